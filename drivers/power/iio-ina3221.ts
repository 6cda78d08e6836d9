/**
 * The INA3221 on NVIDIA Jetson Nano, TX1, TX2 and AGX Xavier under L4T r32 (JetPack 4): NVIDIA's
 * ina3221x driver exposes it through IIO, not hwmon, at
 * bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/ with, per channel N = 0..2, rail_name_N
 * (e.g. POM_5V_IN), in_voltageN_input (bus voltage, mV), in_currentN_input (mA) and
 * in_powerN_input (mW) — the units of the IIO ABI and of NVIDIA's L4T power documentation. This
 * is the layout jtop reads on JetPack 4. runtime/power/rails.ts picks the board's figure.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chooseRail, railChannel, railReading, type IndexedChannel } from '../../runtime/power/rails.js';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { listDirs, readInteger, readOptional, scaled, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

export class IioIna3221Sensor extends SysfsSensor {
  #inputRail = false;

  /** dir: the iio:deviceN directory; the id names the chip by its I2C bus address. */
  constructor(dir: string, address: string, options: SysfsSensorOptions = {}) {
    super(`iio:ina3221x@${address}`, 'iio', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const indices = (await readdir(this.dir)).map((f) => /^rail_name_(\d+)$/.exec(f)?.[1]).filter((m) => m !== undefined).map(Number).sort((a, b) => a - b);
    if (!indices.length) throw new SysfsError(this.dir, 'no rail_name_N: not an ina3221x IIO device');
    const channels: IndexedChannel[] = [];
    for (const i of indices) {
      const f = (attr: string): string => join(this.dir, attr);
      const [label, mw, mv, ma] = await Promise.all([
        readOptional(f(`rail_name_${i}`)), readInteger(f(`in_power${i}_input`), 'mW'), readInteger(f(`in_voltage${i}_input`), 'mV'), readInteger(f(`in_current${i}_input`), 'mA'),
      ]);
      if (label === undefined || label === 'NC' || (mw === undefined && ma === undefined)) continue;
      channels.push(railChannel(i, label, { watts: scaled(mw, 1000), volts: scaled(mv, 1000), amps: scaled(ma, 1000) }));
    }
    const rail = chooseRail(channels);
    if ('error' in rail) throw new SysfsError(this.dir, `ina3221x: ${rail.error} (in_powerN_input, or in_voltageN_input with in_currentN_input)`);
    this.#inputRail = rail.inputRail;
    const { reading, detail } = railReading('ina3221x', channels, rail);
    this.detail = detail;
    return reading;
  }

  get readsInputRail(): boolean {
    return this.#inputRail;
  }
}

/** Every ina3221x IIO device under a sysfs root, one sensor per chip. */
export async function findIioIna3221(root: string, options: SysfsSensorOptions = {}): Promise<IioIna3221Sensor[]> {
  const driver = join(root, 'bus/i2c/drivers/ina3221x');
  const sensors: IioIna3221Sensor[] = [];
  for (const address of await listDirs(driver, /^\d+-[0-9a-f]{4}$/)) {
    for (const dev of await listDirs(join(driver, address), /^iio:device\d+$/)) sensors.push(new IioIna3221Sensor(join(driver, address, dev), address, options));
  }
  return sensors;
}

