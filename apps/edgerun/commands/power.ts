/** `edgerun power --list | --watch`: the board's power sensors and their live readings. */
import { detectSensors, primarySensor } from '../../../drivers/power/detect.js';
import type { PowerReading, PowerSensor } from '../../../runtime/power/sensor.js';
import { BatteryDrawSensor } from '../../../runtime/power/battery-draw-sensor.js';
import { SumSensor } from '../../../runtime/power/sum-sensor.js';
import { loadConfig, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';

export interface PowerOptions {
  list?: boolean;
  watch?: boolean;
  interval: number;
  count?: number;
  root?: string;
  sensor?: string[];
  json?: boolean;
}

export async function powerCommand(opts: PowerOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global, opts.root ? { power: { root: opts.root } } : {});
  const root = config.power.root;
  // --watch's first round is the sensors' first reading: energy counters show n/a there, not the
  // near-zero increment since a probe an instant earlier.
  const sensors = await detectSensors(root, { probe: !opts.watch });
  if (opts.watch) return watch(root, select(sensors, opts.sensor), opts);
  list(root, sensors, opts.json);
}

function list(root: string, sensors: PowerSensor[], json = false): void {
  const primary = primarySensor(sensors);
  if (json) {
    console.log(JSON.stringify({ root, primary: primary?.describe().id ?? null, sensors: sensors.map((s) => s.describe()) }));
    return;
  }
  if (!sensors.length) {
    console.log(`no power sensors under ${root} (no class/power_supply battery, hwmon power monitor, RAPL zone or thermal zone)`);
    return;
  }
  // A sum (two monitors, two sockets) or a battery with its stand-in marks each of its parts.
  const partsOf = (s: PowerSensor): PowerSensor[] => (s instanceof SumSensor || s instanceof BatteryDrawSensor ? s.parts.flatMap(partsOf) : [s]);
  const counted = new Set<PowerSensor>(primary ? partsOf(primary) : []);
  const rows = sensors.map((s) => {
    const d = s.describe();
    return [`${counted.has(s) ? '*' : ' '} ${d.id}`, d.kind, d.available ? 'ok' : 'unavailable', d.available ? d.detail : d.error ?? ''];
  });
  console.log(formatTable(['sensor', 'kind', 'state', 'detail'], rows));
  const onMains = primary instanceof BatteryDrawSensor ? ` (from ${primary.draw.describe().id} while the battery does not discharge)` : '';
  console.log(primary ? `\n* device power is read from ${primary.describe().id}${onMains}` : '\nno available sensor measures the device\'s power');
}

function select(sensors: PowerSensor[], ids: string[] | undefined): PowerSensor[] {
  if (!ids?.length) return sensors;
  const known = new Map(sensors.map((s) => [s.describe().id, s]));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length) throw new Error(`no sensor ${missing.map((m) => `'${m}'`).join(', ')}; found: ${[...known.keys()].join(', ') || 'none'}`);
  return ids.map((id) => known.get(id)!);
}

async function watch(root: string, sensors: PowerSensor[], opts: PowerOptions): Promise<void> {
  if (!sensors.length) {
    console.error(`edgerun: no power sensors under ${root}; nothing to watch (try --root, or check that the drivers are loaded)`);
    process.exitCode = 1;
    return;
  }
  let stop = false;
  const onSignal = (): void => { stop = true; };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (let round = 0; !stop && (opts.count === undefined || round < opts.count); round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, opts.interval));
      const readings = await Promise.all(sensors.map(async (s) => ({ id: s.describe().id, reading: await s.read() })));
      if (opts.json) console.log(JSON.stringify({ round, readings: readings.map(({ id, reading }) => ({ id, ...reading })) }));
      else printRound(readings, round === 0);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const num = (x: number | undefined, digits: number): string => (x === undefined ? '-' : x.toFixed(digits));

/** An energy counter has watts from its second reading on: n/a before that, not 0. */
const watts = (r: PowerReading): string => (r.watts === undefined && r.joules !== undefined ? 'n/a' : num(r.watts, 3));
const state = (r: PowerReading): string => r.status ?? (r.online === undefined ? '' : r.online ? 'online' : 'offline');

function printRound(readings: { id: string; reading: PowerReading }[], header: boolean): void {
  const cols = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(12) : i === 1 ? c.padEnd(24) : c.padStart(10))).join(' ').trimEnd();
  if (header) console.log(cols(['time', 'sensor', 'W', 'J', '%', 'V', 'A', '°C', 'status']));
  for (const { id, reading: r } of readings) {
    const time = new Date(r.ts).toISOString().slice(11, 23);
    if (r.error) console.log(`${cols([time, id])} unavailable: ${r.error}`);
    else console.log(cols([time, id, watts(r), num(r.joules, 3), num(r.batteryPct, 1), num(r.volts, 3), num(r.amps, 3), num(r.celsius, 1), state(r)]));
  }
}
