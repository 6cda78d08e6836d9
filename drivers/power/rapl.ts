/**
 * Intel/AMD RAPL through powercap (class/powercap/intel-rapl:N/): energy_uj is a µJ counter that wraps
 * at max_energy_range_uj. Joules accumulate across wraps; watts are the increment over the time since
 * the previous read (undefined on the first). A counter that wraps more than once between two reads
 * (hours at tens of watts) cannot be told apart from one wrap: read more often than that.
 * Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694).
 */
import { basename, join } from 'node:path';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readOptional, readRequiredInteger, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

export class RaplSensor extends SysfsSensor {
  #last: { uj: number; ts: number } | undefined;
  #totalUj = 0;
  #maxUj: number | undefined;

  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`rapl:${basename(dir)}`, 'rapl', dir, options);
  }

  protected async sample(ts: number): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const zone = (await readOptional(join(this.dir, 'name'))) ?? basename(this.dir);
    this.#maxUj ??= await readRequiredInteger(join(this.dir, 'max_energy_range_uj'), 'µJ');
    let uj: number;
    try {
      uj = await readRequiredInteger(join(this.dir, 'energy_uj'), 'µJ');
    } catch (e) {
      if (e instanceof SysfsError && /permission denied/.test(e.message)) {
        throw new SysfsError(e.path, 'permission denied: energy_uj is readable by root only since Linux 5.10 (run as root, or grant read access with a udev rule)');
      }
      throw e;
    }
    const max = this.#maxUj;
    if (uj < 0 || uj > max) throw new SysfsError(join(this.dir, 'energy_uj'), `counter ${uj} µJ is outside 0..max_energy_range_uj (${max})`);
    this.detail = `${zone} (wraps at ${(max / 1e6).toFixed(0)} J)`;
    const r: Omit<PowerReading, 'ts'> = {};
    const last = this.#last;
    if (last) {
      const delta = uj >= last.uj ? uj - last.uj : max - last.uj + uj;
      this.#totalUj += delta;
      if (ts > last.ts) r.watts = delta / 1e3 / (ts - last.ts); // µJ per ms = mW → W
    }
    this.#last = { uj, ts };
    r.joules = this.#totalUj / 1e6;
    return r;
  }
}
