/**
 * Finds the power sensors a board has under a sysfs root (default /sys; tests point it at fixture
 * trees): batteries and external supplies, hwmon power monitors, the IIO INA3221 of L4T r32
 * Jetsons, RAPL zones and thermal zones. Each sensor is read once, so the list says which are
 * available and why the others are not. Never throws.
 */
import { join } from 'node:path';
import type { Clock } from '../../runtime/power/clock.js';
import type { PowerSensor } from '../../runtime/power/sensor.js';
import { BatteryDrawSensor } from '../../runtime/power/battery-draw-sensor.js';
import { SumSensor } from '../../runtime/power/sum-sensor.js';
import { HwmonSensor, hwmonIdentity, hwmonRole } from './hwmon.js';
import { findIioIna3221, IioIna3221Sensor } from './iio-ina3221.js';
import { powerSupplySensor } from './power-supply.js';
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
    const sensor = await powerSupplySensor(join(supplies, name), opts);
    if (sensor) sensors.push(sensor);
  }
  // A battery's own hwmon entry repeats the battery, which is read above.
  const hwmon = join(root, 'class/hwmon');
  for (const name of await listDirs(hwmon, /^hwmon\d+$/)) {
    const dir = join(hwmon, name);
    if ((await hwmonRole(dir)) === 'power-monitor') sensors.push(new HwmonSensor(dir, { ...opts, id: await hwmonIdentity(dir) }));
  }
  sensors.push(...(await findIioIna3221(root, opts)));
  // Top-level zones only: sub-zones are read by their package's sensor, and intel-rapl-mmio:0
  // reports the same package again.
  const powercap = join(root, 'class/powercap');
  for (const name of await listDirs(powercap, /^intel-rapl:\d+$/)) sensors.push(new RaplSensor(join(powercap, name), opts));
  if (options.thermal ?? true) {
    const thermal = join(root, 'class/thermal');
    for (const name of await listDirs(thermal, /^thermal_zone\d+$/)) sensors.push(new ThermalZoneSensor(join(thermal, name), opts));
  }
  if (options.probe ?? true) await Promise.all(sensors.map((s) => s.read()));
  return sensors;
}

/**
 * The sensor whose power best stands for the whole device: a battery (with the board's draw sensor
 * standing in while it does not discharge: on mains it has no draw reading); else a board power
 * monitor that reads the input rail, or the sum of the board's monitors; else RAPL psys, or the sum
 * of the packages (each with its DRAM). External supplies (mains, USB-C) never: they do not measure
 * the draw; nor monitors of one component (a GPU's hwmon power, an AMD CPU's): they measure a part.
 */
export function primarySensor(sensors: readonly PowerSensor[]): PowerSensor | undefined {
  const available = sensors.filter((s) => s.describe().available);
  const battery = available.find((s) => s.describe().kind === 'battery');
  const draw = drawSensor(available);
  if (battery) return draw ? new BatteryDrawSensor(battery, draw) : battery;
  return draw;
}

/** The board's draw without a battery: its input rail, its monitors summed, else RAPL. */
function drawSensor(available: readonly PowerSensor[]): PowerSensor | undefined {
  const monitors = available.filter((s): s is HwmonSensor | IioIna3221Sensor => (s instanceof HwmonSensor && !s.measuresComponent) || s instanceof IioIna3221Sensor);
  const board = monitors.find((m) => m.readsInputRail) ?? oneOrSum(monitors);
  if (board) return board;
  const rapl = available.filter((s) => s.describe().kind === 'rapl');
  return rapl.find((s) => /^psys/.test(s.describe().detail)) ?? oneOrSum(rapl);
}

function oneOrSum(sensors: readonly PowerSensor[]): PowerSensor | undefined {
  return sensors.length > 1 ? new SumSensor(sensors) : sensors[0];
}
