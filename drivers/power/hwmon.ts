/**
 * hwmon power monitors (class/hwmon/hwmonN/): INA219/INA226 (ina2xx driver: in0 shunt mV, in1 bus
 * mV, curr1 mA, power1 µW) on Raspberry Pi HATs, INA3221 on NVIDIA Jetson boards (in1-3 bus mV,
 * curr1-3 mA, in1-3_label rail names, in4-7 shunt µV, curr4 the sum). A channel's power is
 * power*_input where the driver computes it, else bus voltage × current. The reading's watts is one
 * chosen channel — by default the board input rail (VDD_IN, POM_5V_IN ...), never a sum of rails
 * that already contain one another.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PowerChannel, PowerReading } from '../../runtime/power/sensor.js';
import { readInteger, readOptional, readRequired, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

/** in* inputs that are shunt voltages, not bus voltages, per driver name: never multiplied by a current. */
const SHUNT_INPUTS: Record<string, readonly number[]> = {
  ina3221: [4, 5, 6, 7],
  ina209: [0], ina219: [0], ina220: [0], ina226: [0], ina230: [0], ina231: [0], ina238: [0],
};

const BOARD_INPUT = /(^|_)(VDD_IN|VIN|IN|POM_5V_IN|VDD_5V_IN|SYS_IN)$/i;

export interface HwmonOptions extends SysfsSensorOptions {
  /** The channel whose power is the reading's: its label (e.g. "VDD_IN") or index. */
  channel?: string | number;
}

export class HwmonSensor extends SysfsSensor {
  #name = '';

  constructor(dir: string, private readonly options: HwmonOptions = {}) {
    super(`hwmon:${basename(dir)}`, 'hwmon', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const name = await readRequired(join(this.dir, 'name'));
    const files = await readdir(this.dir);
    const indices = new Set<number>();
    for (const f of files) {
      const m = /^(power|curr)(\d+)_input$/.exec(f);
      if (m) indices.add(Number(m[2]));
    }
    if (!indices.size) throw new SysfsError(this.dir, `'${name}' has no power*_input or curr*_input: not a power monitor`);
    const shunts = SHUNT_INPUTS[name] ?? [];
    const channels: (PowerChannel & { index: number })[] = [];
    for (const i of [...indices].sort((a, b) => a - b)) {
      const f = (attr: string): string => join(this.dir, attr);
      const [powerUw, mv, ma, inLabel, currLabel, powerLabel] = await Promise.all([
        readInteger(f(`power${i}_input`), 'µW'),
        shunts.includes(i) ? undefined : readInteger(f(`in${i}_input`), 'mV'),
        readInteger(f(`curr${i}_input`), 'mA'),
        readOptional(f(`in${i}_label`)), readOptional(f(`curr${i}_label`)), readOptional(f(`power${i}_label`)),
      ]);
      // A disabled INA3221 channel answers ENODATA: no figures at all, so it is left out.
      if (powerUw === undefined && ma === undefined) continue;
      const ch: PowerChannel & { index: number } = { index: i, label: inLabel ?? currLabel ?? powerLabel ?? (name === 'ina3221' && i === 4 ? 'sum of channels' : `${name}:${i}`) };
      if (mv !== undefined) ch.volts = mv / 1000;
      if (ma !== undefined) ch.amps = ma / 1000;
      if (powerUw !== undefined) ch.watts = powerUw / 1e6;
      else if (ch.volts !== undefined && ch.amps !== undefined) ch.watts = Math.abs(ch.volts * ch.amps);
      channels.push(ch);
    }
    const primary = this.#primary(channels);
    if (!primary) throw new SysfsError(this.dir, `'${name}': no channel with a power figure (power*_input, or in*_input with curr*_input)`);
    this.#name = name;
    this.detail = `${name}: ${channels.map((c) => c.label).join(', ')} (reading ${primary.label})`;
    const r: Omit<PowerReading, 'ts'> = { watts: primary.watts!, channels: channels.map(({ index: _i, ...c }) => c) };
    if (primary.volts !== undefined) r.volts = primary.volts;
    if (primary.amps !== undefined) r.amps = primary.amps;
    return r;
  }

  get chip(): string {
    return this.#name;
  }

  #primary<C extends PowerChannel & { index: number }>(channels: C[]): C | undefined {
    const withPower = channels.filter((c) => c.watts !== undefined);
    const want = this.options.channel;
    if (want !== undefined) {
      const found = withPower.find((c) => (typeof want === 'number' ? c.index === want : c.label === want));
      if (!found) throw new SysfsError(this.dir, `no channel ${JSON.stringify(want)} with a power figure; channels: ${withPower.map((c) => `${c.index} (${c.label})`).join(', ') || 'none'}`);
      return found;
    }
    return withPower.find((c) => BOARD_INPUT.test(c.label)) ?? withPower[0];
  }
}

/** hwmon devices that measure power or current (not the temperature-only ones). */
export async function isPowerMonitor(dir: string): Promise<boolean> {
  const files = await readdir(dir).catch(() => [] as string[]);
  return files.some((f) => /^(power|curr)\d+_input$/.test(f));
}

