/**
 * Finds the power sensors a board has under a sysfs root (default /sys; tests point it at fixture
 * trees): batteries and supplies, hwmon power monitors, RAPL zones and thermal zones. Each sensor is
 * read once, so the list says which are available and why the others are not. Never throws.
 */
import { join } from 'node:path';
import type { Clock } from '../../runtime/power/clock.js';
import type { PowerSensor } from '../../runtime/power/sensor.js';
import { HwmonSensor, isPowerMonitor } from './hwmon.js';
import { isPowerSupplyWorthReading, PowerSupplySensor } from './power-supply.js';
import { RaplSensor } from './rapl.js';
import { listDirs } from './sysfs.js';
import { ThermalZoneSensor } from './thermal-zone.js';

export interface DetectOptions {
  clock?: Clock;
  /** Include thermal zones (for a thermal limit). */
  thermal?: boolean;
  /** Read each sensor once to learn whether it works (default true). */
  probe?: boolean;
}

export async function detectSensors(root = '/sys', options: DetectOptions = {}): Promise<PowerSensor[]> {
  const opts = { clock: options.clock };
  const sensors: PowerSensor[] = [];
  const supplies = join(root, 'class/power_supply');
  for (const name of await listDirs(supplies, /./)) {
    if (await isPowerSupplyWorthReading(join(supplies, name))) sensors.push(new PowerSupplySensor(join(supplies, name), opts));
  }
  const hwmon = join(root, 'class/hwmon');
  for (const name of await listDirs(hwmon, /^hwmon\d+$/)) {
    if (await isPowerMonitor(join(hwmon, name))) sensors.push(new HwmonSensor(join(hwmon, name), opts));
  }
  // Top-level zones only: intel-rapl:0:0 (core) is inside intel-rapl:0 (package), and
  // intel-rapl-mmio:0 reports the same package again.
  const powercap = join(root, 'class/powercap');
  for (const name of await listDirs(powercap, /^intel-rapl:\d+$/)) sensors.push(new RaplSensor(join(powercap, name), opts));
  if (options.thermal ?? true) {
    const thermal = join(root, 'class/thermal');
    for (const name of await listDirs(thermal, /^thermal_zone\d+$/)) sensors.push(new ThermalZoneSensor(join(thermal, name), opts));
  }
  if (options.probe ?? true) await Promise.all(sensors.map((s) => s.read()));
  return sensors;
}

const PREFERENCE = ['battery', 'hwmon', 'rapl'] as const;

/** The sensor whose power best stands for the whole device: a battery, else a board power monitor, else RAPL. */
export function primarySensor(sensors: readonly PowerSensor[]): PowerSensor | undefined {
  for (const kind of PREFERENCE) {
    const found = sensors.filter((s) => s.describe().kind === kind && s.describe().available);
    // psys (the whole platform) before package-0 (the CPU package only).
    if (kind === 'rapl') found.sort((a, b) => Number(/psys/.test(b.describe().detail)) - Number(/psys/.test(a.describe().detail)));
    if (found[0]) return found[0];
  }
  return undefined;
}
