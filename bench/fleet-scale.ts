/**
 * The fleet scale goal (issue 16): N emulated devices (default 1,000; `--devices N`) on this
 * machine's worker threads (apps/edgerun/fleet/host.ts), each one MLP inference per second on the
 * `pcm` profile with its results over QoS 1 — first to a local Mosquitto, then to the embedded
 * Aedes broker in its own process (`edgerun broker`). Measured from the broker only, by a separate
 * consumer process (`edgerun fleet collect`) over a steady-state window after every device is
 * online: end-to-end p99 (device timestamp → consumer), lost, duplicated, results/s; and on the host
 * side the RSS growth per device and the CPU the devices spend per device-second.
 *
 *   npm run bench -- fleet-scale                                  # 1,000 devices, 60 s window per broker
 *   node bin/run-ts.js bench/fleet-scale.ts --devices 200 --seconds 30 --warmup 5 --brokers mosquitto --fsync never
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Mosquitto } from '../test/helpers/mosquitto.js';
import { startFleetHost, type ThreadFigures } from '../apps/edgerun/fleet/host.js';
import { resolveConfig, type Config } from '../runtime/config.js';
import { expandFleet, parseFleetFile } from '../runtime/fleet/fleet-file.js';
import type { FleetReport } from '../runtime/fleet/report.js';
import { fmt, report } from './measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const MB = 1024 * 1024;

interface Broker { name: string; url: string; protocol: 4 | 5; stop(): Promise<void> }

async function mosquitto(): Promise<Broker> {
  const m = await Mosquitto.start({ persistence: false });
  return { name: 'Mosquitto', url: m.url, protocol: 5, stop: () => m.dispose() };
}

/** The embedded Aedes broker, in a process of its own (as `edgerun broker` runs it). */
async function aedes(): Promise<Broker> {
  const proc = spawn(process.execPath, ['bin/edgerun.js', 'broker', '--port', '0', '--no-ws'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /(mqtt:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`edgerun broker exited (${code}): ${out}`)));
  });
  return {
    name: 'Aedes (own process)', url, protocol: 4,
    stop: () => new Promise((resolve) => { proc.once('exit', () => resolve()); proc.kill('SIGTERM'); }),
  };
}

function collect(broker: Broker, fleet: string, seconds: number, warmupS: number, out: string): { proc: ChildProcess; subscribed: Promise<void>; done: Promise<FleetReport> } {
  const proc = spawn(process.execPath, ['bin/edgerun.js', 'fleet', 'collect', '--url', broker.url, '--protocol', String(broker.protocol), '--fleet', fleet, '--seconds', String(seconds),
    ...(warmupS > 0 ? ['--warmup', String(warmupS)] : []), '--out', out],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (b: Buffer) => { log += b.toString(); });
  proc.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
  const done = new Promise<FleetReport>((resolve, reject) => proc.once('exit', (code) => {
    if (code === 0) resolve(JSON.parse(readFileSync(out, 'utf8')) as FleetReport);
    else reject(new Error(`fleet collect exited ${code}: ${log}`));
  }));
  const subscribed = new Promise<void>((resolve) => proc.stderr!.on('data', () => { if (log.includes('collecting on')) resolve(); }));
  return { proc, subscribed, done: subscribed.then(() => done) };
}

interface Row {
  broker: string; devices: number; online: number; startS: number; resultsPerS: number; p50: number; p99: number; lost: number; duplicated: number;
  rssPerDeviceMB: number; cpuMsPerDeviceS: number; load: number; consumerCpu: number; threads: ThreadFigures[];
}

/** `rss0`: the bench process before any fleet ran (a later fleet reuses memory the allocator kept from an earlier one). */
async function runOne(make: () => Promise<Broker>, devices: number, workers: number, seconds: number, warmupS: number, rss0: number, config: Config): Promise<Row> {
  const broker = await make();
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-fleet-scale-'));
  const fleetName = 'scale';
  const fleet = expandFleet(parseFleetFile(JSON.stringify({ fleet: fleetName, groups: [{ name: 'd', count: devices, profile: 'pcm', models: ['mlp'], rateHz: 1, seed: 1 }] }), 'fleet-scale.json'), () => Math.random);
  const t0 = performance.now();
  const host = startFleetHost({ devices: fleet.devices, fleet: fleetName, url: broker.url, protocolVersion: broker.protocol, workers, config, stateDir: join(dir, 'state'), log: (l) => console.error(`  ${l}`) });
  try {
    await host.started;
    const startS = (performance.now() - t0) / 1000;
    const online = host.devices().filter((d) => d.state === 'online').length;
    console.log(`  ${broker.name}: ${online}/${devices} online after ${fmt(startS, 1)} s; a separate consumer process counts every result, and times them after a ${warmupS} s warm-up for ${seconds} s`);
    // The warm-up keeps the consumer's own start (a second or two of a core, on this two-core host)
    // and the fleet's catch-up after its start out of the timed window; lost and duplicated count from the start.
    const consumer = collect(broker, fleetName, seconds, warmupS, join(dir, 'metrics.json'));
    await consumer.subscribed;
    await new Promise((r) => setTimeout(r, warmupS * 1000));
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    const result = await consumer.done;
    const cpu = process.cpuUsage(cpu0);
    const wallS = (performance.now() - w0) / 1000;
    const rss = host.rssBytes();
    const f = result.metrics!.fleet;
    return {
      broker: broker.name, devices, online, startS, resultsPerS: f.resultsPerSecond, p50: f.latency.p50Ms, p99: f.latency.p99Ms, lost: f.lost, duplicated: f.duplicated,
      rssPerDeviceMB: (rss - rss0) / MB / devices, cpuMsPerDeviceS: (cpu.user + cpu.system) / 1000 / (online * wallS), load: loadavg()[0]!,
      consumerCpu: result.metrics!.loadGeneratorCpuShare ?? NaN, threads: host.threads(w0),
    };
  } finally {
    await host.stop({ drainMs: 10_000 });
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function printRow(r: Row): void {
  console.log(`  ${r.broker} (${r.online}/${r.devices} online, started in ${fmt(r.startS, 1)} s, load average ${fmt(r.load, 1)} at the end)`);
  report('    results/s (1 per device-second offered)', fmt(r.resultsPerS, 1), { text: `≥ ${fmt(r.devices * 0.99, 0)}`, met: r.resultsPerS >= r.devices * 0.99 });
  report('    end-to-end p50 / p99, ms', `${fmt(r.p50, 1)} / ${fmt(r.p99, 1)}`, { text: 'p99 < 100', met: r.p99 < 100 });
  report('    lost', String(r.lost), { text: '0', met: r.lost === 0 });
  report('    duplicated', String(r.duplicated));
  report('    consumer process CPU share (one core = 100 %)', `${fmt(r.consumerCpu * 100, 1)} %`);
  report('    RSS growth per device, MB', fmt(r.rssPerDeviceMB), { text: '≤ 5', met: r.rssPerDeviceMB <= 5 });
  // 2 cores give 2,000 ms of CPU per second: 1,000 devices fit only well under 2 ms each.
  report('    device CPU per device-second, ms (host process)', fmt(r.cpuMsPerDeviceS, 3), { text: '< 2', met: r.cpuMsPerDeviceS < 2 });
  // What a result can wait behind on its device's thread: timers firing late, GC pauses.
  for (const t of r.threads) {
    report(`    thread ${t.worker}: event-loop delay worst-second p99 / max, ms`, `${fmt(t.loopDelayP99Ms, 1)} / ${fmt(t.loopDelayMaxMs, 1)}`);
    report(`    thread ${t.worker}: seconds with a delay > 100 ms`, `${t.slowSeconds} of ${t.seconds}`);
    if (t.slow.length) console.log(`      (at ${t.slow.map((s) => `${fmt(s.atS, 0)} s: ${s.delayMs} ms`).join(', ')})`);
    report(`    thread ${t.worker}: GC pauses, share of time / longest, ms`, `${fmt(t.gcShare * 100, 1)} % / ${fmt(t.gcMaxMs, 1)}`);
  }
}

export async function main(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      devices: { type: 'string', default: '1000' }, workers: { type: 'string', default: '2' }, seconds: { type: 'string', default: '60' }, warmup: { type: 'string', default: '10' }, brokers: { type: 'string', default: 'mosquitto,aedes' },
      // The devices' outbox fsync policy (config mqtt.outbox.fsync), to tell the disk's share of the tail.
      fsync: { type: 'string', default: 'interval' },
    },
  });
  const devices = Number(values.devices);
  const workers = Number(values.workers);
  const seconds = Number(values.seconds);
  const warmupS = Number(values.warmup);
  if (!Number.isInteger(warmupS) || warmupS < 0) throw new Error('--warmup: expected a whole number of seconds ≥ 0');
  for (const [flag, n] of [['--devices', devices], ['--workers', workers], ['--seconds', seconds]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a whole number ≥ 1`);
  }
  if (!['always', 'interval', 'never'].includes(values.fsync)) throw new Error(`--fsync: expected always, interval or never`);
  const config = resolveConfig({ flags: { mqtt: { outbox: { fsync: values.fsync as Config['mqtt']['outbox']['fsync'] } } } });
  const makers: Record<string, () => Promise<Broker>> = { mosquitto, aedes };
  const brokers = values.brokers.split(',').map((b) => {
    if (!(b in makers)) throw new Error(`--brokers: unknown '${b}' (mosquitto, aedes)`);
    return makers[b]!;
  });
  console.log(`\nfleet-scale: ${devices} devices × 1 MLP inference/s on pcm, ${workers} worker threads, QoS 1 results, outbox fsync ${values.fsync}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  // Each broker's figures as soon as they are measured: a long run keeps what it has.
  const rss0 = process.memoryUsage.rss();
  for (const make of brokers) printRow(await runOne(make, devices, workers, seconds, warmupS, rss0, config));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
