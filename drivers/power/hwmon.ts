/**
 * hwmon power monitors (class/hwmon/hwmonN/, Documentation/ABI/testing/sysfs-class-hwmon):
 * INA219/INA226 (ina2xx driver: in0 shunt mV, in1 bus mV, curr1 mA, power1 µW) on Raspberry Pi
 * HATs, INA3221 on NVIDIA Jetson boards under L4T r34+ / JetPack 5 (in1-3 bus mV, curr1-3 mA,
 * in1-3_label rail names, in4-7 shunt µV, curr4 the sum). A channel's power is power*_input where
 * the driver computes it, else bus voltage × current; runtime/power/rails.ts picks the figure that
 * stands for the board. Rails labelled NC (not connected, Orin modules) are left out, as jtop does.
 *
 * hwmonN numbers follow probe order and can change across reboots, so a sensor's id is its chip
 * name and the device it belongs to (the bus address for I2C chips): hwmon:ina3221@1-0040.
 */
import { readdir, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { chooseRail, railChannel, railReading, type IndexedChannel } from '../../runtime/power/rails.js';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readInteger, readOptional, readRequired, scaled, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

/** in* inputs that are shunt voltages, not bus voltages, per driver name: never multiplied by a current. */
const SHUNT_INPUTS: Record<string, readonly number[]> = {
  ina3221: [4, 5, 6, 7],
  ina209: [0], ina219: [0], ina220: [0], ina226: [0], ina230: [0], ina231: [0], ina238: [0],
};

/**
 * Chips whose power inputs measure one component, not the board: GPU drivers (amdgpu and radeon
 * report the GPU's or APU SoC's power1_input, nouveau, i915 and xe the card's) and AMD CPU power
 * (fam15h_power). Listed, never the device's power sensor.
 */
const COMPONENT_CHIPS = new Set(['amdgpu', 'radeon', 'nouveau', 'i915', 'xe', 'fam15h_power']);

export interface HwmonOptions extends SysfsSensorOptions {
  /** The channel whose power is the reading's: its label (e.g. "VDD_IN") or index. */
  channel?: string | number;
  /** The sensor's id (detectSensors gives the stable one from hwmonIdentity). */
  id?: string;
}

export class HwmonSensor extends SysfsSensor {
  #inputRail = false;
  #component = false;

  constructor(dir: string, private readonly options: HwmonOptions = {}) {
    super(options.id ?? `hwmon:${basename(dir)}`, 'hwmon', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const name = await readRequired(join(this.dir, 'name'));
    this.#component = COMPONENT_CHIPS.has(name);
    const files = await readdir(this.dir);
    const indices = new Set<number>();
    for (const f of files) {
      const m = /^(power|curr)(\d+)_input$/.exec(f);
      if (m) indices.add(Number(m[2]));
    }
    if (!indices.size) throw new SysfsError(this.dir, `'${name}' has no power*_input or curr*_input: not a power monitor`);
    const shunts = SHUNT_INPUTS[name] ?? [];
    const channels: IndexedChannel[] = [];
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
      const label = inLabel ?? currLabel ?? powerLabel ?? (name === 'ina3221' && i === 4 ? 'sum of channels' : `${name}:${i}`);
      if (label === 'NC') continue;
      channels.push(railChannel(i, label, { watts: scaled(powerUw, 1e6), volts: scaled(mv, 1000), amps: scaled(ma, 1000) }));
    }
    const rail = chooseRail(channels, this.options.channel);
    if ('error' in rail) throw new SysfsError(this.dir, `'${name}': ${rail.error}${this.options.channel === undefined ? ' (power*_input, or in*_input with curr*_input)' : ''}`);
    this.#inputRail = rail.inputRail;
    const { reading, detail } = railReading(name, channels, rail);
    this.detail = this.#component ? `${detail} (one component's power, not the board's)` : detail;
    return reading;
  }

  /** The chip measures one component (a GPU, a CPU), not the board (known from its last reading). */
  get measuresComponent(): boolean {
    return this.#component;
  }

  /** The last reading was the board's input rail (the whole board's power), not a rail or a sum of rails. */
  get readsInputRail(): boolean {
    return this.#inputRail;
  }
}

export type HwmonRole = 'power-monitor' | 'battery' | 'other';

/**
 * What an hwmon entry is: a power monitor (power or current inputs), a battery's own hwmon view
 * (power_supply registers one: its device is under power_supply/, and the battery is read there),
 * or something else (temperatures, fans).
 */
export async function hwmonRole(dir: string): Promise<HwmonRole> {
  const device = await deviceOf(dir);
  if (device && basename(dirname(device)) === 'power_supply') return 'battery';
  const files = await readdir(dir).catch(() => [] as string[]);
  return files.some((f) => /^(power|curr)\d+_input$/.test(f)) ? 'power-monitor' : 'other';
}

/** The id that survives a reboot: hwmon:<chip>@<device> (I2C bus address, platform device name). */
export async function hwmonIdentity(dir: string): Promise<string> {
  const name = await readOptional(join(dir, 'name')).catch(() => undefined);
  const device = await deviceOf(dir);
  return name && device ? `hwmon:${name}@${basename(device)}` : `hwmon:${basename(dir)}`;
}

/** The device directory an hwmon entry belongs to: its `device` link, else the directory holding it. */
async function deviceOf(dir: string): Promise<string | undefined> {
  const linked = await realpath(join(dir, 'device')).catch(() => undefined);
  if (linked) return linked;
  const real = await realpath(dir).catch(() => undefined);
  if (!real) return undefined;
  // …/1-0040/hwmon/hwmon1 (the hwmon class directory of a device) or …/thermal_zone0/hwmon0;
  // class/hwmon/hwmon1 itself when the class entry is not a link into devices/ (no device known).
  const parent = dirname(real);
  if (basename(parent) !== 'hwmon') return parent;
  return basename(dirname(parent)) === 'class' ? undefined : dirname(parent);
}
