/**
 * Intel/AMD RAPL through powercap (class/powercap/intel-rapl:N/): energy_uj is a µJ counter that wraps
 * at max_energy_range_uj. A package zone has sub-zones (intel-rapl:N:M) told apart by their `name`,
 * not their number, as powertop reads them: core and uncore are parts of the package, dram is
 * outside it (on servers it is intel-rapl:N:0, on clients intel-rapl:N:2). The zone's power is
 * package + dram; core and uncore are reported as channels and never added. A psys zone is the
 * whole platform on its own.
 *
 * Joules accumulate across wraps; watts are the increment over at least MIN_WATTS_INTERVAL_MS, so
 * the first reading, and one taken right after it (the counter updates about every millisecond),
 * have none rather than a 0 W. A counter that wraps more than once between two reads (hours at
 * tens of watts) cannot be told apart from one wrap: read more often than that.
 * Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694).
 */
import { basename, join } from 'node:path';
import type { PowerChannel, PowerReading } from '../../runtime/power/sensor.js';
import { listDirs, readOptional, readRequiredInteger, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

/** Shorter intervals between readings give no watts: the counter moves in steps of about 1 ms. */
export const MIN_WATTS_INTERVAL_MS = 10;

/** Domains outside the package, added to its power; the others (core, uncore) are inside it. */
const OUTSIDE_PACKAGE = new Set(['dram']);

/** One wrapping µJ counter: total joules across wraps, and the watts since the last baseline. */
class EnergyCounter {
  #last: number | undefined;
  #totalUj = 0;
  #base: { totalUj: number; ts: number } | undefined;

  constructor(readonly name: string, readonly dir: string, readonly maxUj: number) {}

  advance(uj: number, ts: number): { joules: number; watts?: number } {
    if (uj < 0 || uj > this.maxUj) throw new SysfsError(join(this.dir, 'energy_uj'), `counter ${uj} µJ is outside 0..max_energy_range_uj (${this.maxUj})`);
    if (this.#last !== undefined) this.#totalUj += uj >= this.#last ? uj - this.#last : this.maxUj - this.#last + uj;
    this.#last = uj;
    const out: { joules: number; watts?: number } = { joules: this.#totalUj / 1e6 };
    const base = this.#base;
    if (!base) this.#base = { totalUj: this.#totalUj, ts };
    else if (ts - base.ts >= MIN_WATTS_INTERVAL_MS) {
      out.watts = (this.#totalUj - base.totalUj) / 1e3 / (ts - base.ts); // µJ per ms = mW → W
      this.#base = { totalUj: this.#totalUj, ts };
    }
    return out;
  }
}

export class RaplSensor extends SysfsSensor {
  #counters: EnergyCounter[] | undefined;

  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`rapl:${basename(dir)}`, 'rapl', dir, options);
  }

  protected async sample(ts: number): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    this.#counters ??= await this.#discover();
    const counters = this.#counters;
    const uj = await Promise.all(counters.map((c) => readEnergy(c.dir)));
    const figures = counters.map((c, i) => ({ name: c.name, ...c.advance(uj[i]!, ts) }));
    const counted = figures.filter((f, i) => i === 0 || OUTSIDE_PACKAGE.has(f.name));
    const r: Omit<PowerReading, 'ts'> = { joules: counted.reduce((a, f) => a + f.joules, 0) };
    if (counted.every((f) => f.watts !== undefined)) r.watts = counted.reduce((a, f) => a + f.watts!, 0);
    if (figures.length > 1) {
      r.channels = figures.map((f): PowerChannel => (f.watts !== undefined ? { label: f.name, watts: f.watts } : { label: f.name }));
    }
    return r;
  }

  /** The zone and its sub-zones, each with its range; read once (they do not change while running). */
  async #discover(): Promise<EnergyCounter[]> {
    const zones = [this.dir, ...(await listDirs(this.dir, /^intel-rapl:\d+:\d+$/)).map((d) => join(this.dir, d))];
    const counters: EnergyCounter[] = [];
    for (const dir of zones) {
      const name = (await readOptional(join(dir, 'name'))) ?? basename(dir);
      counters.push(new EnergyCounter(name, dir, await readRequiredInteger(join(dir, 'max_energy_range_uj'), 'µJ')));
    }
    const [zone, ...subs] = counters;
    const outside = subs.filter((c) => OUTSIDE_PACKAGE.has(c.name)).map((c) => c.name);
    const inside = subs.filter((c) => !OUTSIDE_PACKAGE.has(c.name)).map((c) => c.name);
    this.detail = [
      outside.length ? `${zone!.name} + ${outside.join(' + ')}` : zone!.name,
      inside.length ? `(${inside.join(', ')} inside the package)` : undefined,
      `(wraps at ${(zone!.maxUj / 1e6).toFixed(0)} J)`,
    ].filter(Boolean).join(' ');
    return counters;
  }
}

async function readEnergy(dir: string): Promise<number> {
  try {
    return await readRequiredInteger(join(dir, 'energy_uj'), 'µJ');
  } catch (e) {
    if (e instanceof SysfsError && /permission denied/.test(e.message)) {
      throw new SysfsError(e.path, 'permission denied: energy_uj is readable by root only since Linux 5.10 (run as root, or grant read access with a udev rule)');
    }
    throw e;
  }
}
