/**
 * Temperatures for the governor's thermal limit: class/thermal/thermal_zoneN/ (type text, temp in
 * millidegrees Celsius), e.g. cpu-thermal on a Raspberry Pi, CPU-therm/tj-thermal on Jetson.
 */
import { basename, join } from 'node:path';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readOptional, readRequiredInteger } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

export class ThermalZoneSensor extends SysfsSensor {
  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`thermal:${basename(dir)}`, 'thermal', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const type = await readOptional(join(this.dir, 'type'));
    const milli = await readRequiredInteger(join(this.dir, 'temp'), 'm°C');
    this.detail = type ?? basename(this.dir);
    return { celsius: milli / 1000 };
  }
}
