/**
 * Temperatures for the governor's thermal limit: class/thermal/thermal_zoneN/ (type text, temp in
 * millidegrees Celsius), e.g. cpu-thermal on a Raspberry Pi, CPU-therm/tj-thermal on Jetson.
 * Jetson's drivers report a zone whose sensor is powered off (CV0-therm with the vision
 * accelerators idle, for one) as -256000; jtop shows such zones as offline, and so does this.
 */
import { basename, join } from 'node:path';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readOptional, readRequiredInteger, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

const OFFLINE = -256_000;
const ABSOLUTE_ZERO = -273_150;

export class ThermalZoneSensor extends SysfsSensor {
  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`thermal:${basename(dir)}`, 'thermal', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const type = await readOptional(join(this.dir, 'type'));
    this.detail = type ?? basename(this.dir);
    const path = join(this.dir, 'temp');
    const milli = await readRequiredInteger(path, 'm°C');
    if (milli === OFFLINE) throw new SysfsError(path, 'offline (-256000: the sensor is powered off)');
    if (milli < ABSOLUTE_ZERO) throw new SysfsError(path, `${milli} m°C is below absolute zero`);
    return { celsius: milli / 1000 };
  }
}
