/**
 * `edgerun fleet devices <fleet.yaml>`: the fleet file's emulated devices on this machine, packed
 * into worker threads (apps/edgerun/fleet/host.ts), each a whole edgerun device on the broker.
 * Runs until SIGINT/SIGTERM or --seconds, printing a progress line (devices online, results/s,
 * RSS); then every device stops producing, drains its outbox (bounded), publishes its offline
 * status and disconnects. A restart on the same --state-dir resumes every device (result numbers,
 * unacknowledged messages) where it stopped.
 */
import { resolve } from 'node:path';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import { fleetReport, type FleetReport } from '../../../runtime/fleet/report.js';
import { fleetDataPath, startFleetHost, type FleetHost } from '../fleet/host.js';
import { FleetLoadGenerator, fleetScenarioSpec, scenarioReport, startScenarioConsumer, type FleetLoadOutcome, type ScenarioFlags } from '../fleet/fleet-loadgen.js';
import { interruptOnSignals } from '../fleet/interrupt.js';
import { writeReport } from './fleet-files.js';
import { loadFleetFile } from '../fleet/load-fleet.js';
import { loadConfig, type GlobalOptions } from '../context.js';

/** With `scenario`: issued to the devices (they do not pace themselves), then stop. */
export interface FleetDevicesOptions extends ScenarioFlags {
  url?: string;
  protocol?: 4 | 5;
  workers?: number;
  stateDir: string;
  seconds?: number;
  prefix?: string;
  /** Sign every device's messages, whatever the fleet file says. */
  sign?: boolean;
  data?: string;
  /** Seconds between progress lines. */
  interval: number;
  drainMs: number;
  out?: string;
  html?: string;
  progress?: boolean;
}

const MB = 1024 * 1024;

function progressLine(host: FleetHost, fleet: string, resultsPerS: number, rss0: number): string {
  const devices = host.devices();
  const count = (state: string): number => devices.filter((d) => d.state === state).length;
  const failed = count('failed');
  const lost = count('lost');
  const rss = host.rssBytes();
  return `fleet ${fleet}: ${count('online')}/${devices.length} online${failed ? `, ${failed} failed` : ''}${lost ? `, ${lost} lost` : ''}, `
    + `${resultsPerS.toFixed(1)} results/s, ${devices.reduce((n, d) => n + d.pending, 0)} unacknowledged, `
    + `RSS ${(rss / MB).toFixed(0)} MiB (${devices.length ? ((rss - rss0) / MB / devices.length).toFixed(2) : '0'} MiB/device over the host's start)`;
}

export async function fleetDevicesCommand(file: string, opts: FleetDevicesOptions, global: GlobalOptions): Promise<void> {
  if (opts.scenario !== undefined) {
    await fleetScenarioCommand(file, opts, global);
    return;
  }
  const config = await loadConfig(global);
  const fleet = await loadFleetFile(file);
  const url = opts.url ?? config.mqtt.url;
  if (!url) throw new Error('say which broker: --url mqtt://host:port (or config mqtt.url)');
  const rss0 = process.memoryUsage.rss();
  const host = startFleetHost({
    devices: fleet.devices, fleet: fleet.fleet, url, protocolVersion: opts.protocol, workers: opts.workers, stateDir: resolve(opts.stateDir),
    prefix: opts.prefix, signing: opts.sign ? true : undefined, config, baseDir: fleet.baseDir, data: opts.data, drainMs: opts.drainMs,
    log: (line) => console.error(`edgerun: ${line}`),
  });
  host.on('worker-exit', ({ worker, code }) => { if (code !== 0) console.error(`edgerun: fleet worker ${worker} exited with code ${code}`); });
  host.on('device-online', (id) => { if (host.devices().find((d) => d.id === id)!.lost) console.error(`edgerun: device ${id} recovered (online again after its thread died)`); });

  const signalled = new Promise<string>((res) => {
    process.once('SIGINT', () => res('SIGINT'));
    process.once('SIGTERM', () => res('SIGTERM'));
  });
  const timer = opts.seconds !== undefined ? new Promise<string>((res) => setTimeout(() => res(`${opts.seconds} s`), opts.seconds! * 1000).unref()) : undefined;
  const until = Promise.race([signalled, ...(timer ? [timer] : [])]);

  console.log(`fleet ${fleet.fleet}: starting ${fleet.devices.length} device(s) on ${redactUrl(url)}, state in ${resolve(opts.stateDir)}`);
  let lastResults = 0;
  let lastAt = performance.now();
  const results = (): number => host.devices().reduce((n, d) => n + d.results, 0);
  const progress = setInterval(() => {
    const now = performance.now();
    const total = results();
    console.log(progressLine(host, fleet.fleet, ((total - lastResults) * 1000) / (now - lastAt), rss0));
    lastResults = total;
    lastAt = now;
  }, opts.interval * 1000);
  try {
    // A bad model or profile in the fleet file rejects here, before any device starts.
    const why = await Promise.race([host.started.then(() => undefined), until]);
    if (why === undefined) {
      const failed = host.devices().filter((d) => d.state === 'failed').length;
      console.log(`fleet ${fleet.fleet}: ${fleet.devices.length - failed} device(s) online${failed ? `, ${failed} failed to start` : ''}`);
      if (failed === fleet.devices.length) throw new Error(`no device of fleet ${fleet.fleet} started: ${host.devices()[0]?.error ?? 'unknown'}`);
    }
    const stopWhy = why ?? await until;
    console.log(`fleet ${fleet.fleet}: ${stopWhy}: stopping (outboxes drain for at most ${opts.drainMs} ms)`);
  } finally {
    clearInterval(progress);
    await host.stop();
  }
  const devices = host.devices();
  const pending = devices.reduce((n, d) => n + d.pending, 0);
  console.log(`fleet ${fleet.fleet}: stopped; ${results()} results over every run on this state dir, ${pending} message(s) left in outboxes for the next start`);
  // Devices whose worker thread died under them: lost, then recovered when their restarted thread brought them back.
  const hit = devices.filter((d) => d.lost > 0);
  const unrecovered = hit.filter((d) => d.state === 'lost');
  if (hit.length) {
    console.log(`fleet ${fleet.fleet}: ${hit.length} device(s) lost with their worker thread: ${hit.map((d) => `${d.id} (${d.state === 'lost' ? 'not recovered' : `recovered${d.lost > 1 ? `, lost ${d.lost} times` : ''}`})`).join(', ')}`);
  }
  if (unrecovered.length) process.exitCode = 1;
}

/**
 * `edgerun fleet devices <fleet.yaml> --scenario …`: the devices run only the queries a load
 * generator on this (main) thread issues them (apps/edgerun/fleet/fleet-loadgen.ts), by LoadGen's
 * rules; the load generator times each query from its issue to its last result heard on the broker.
 * Then the devices stop (outboxes drained) and the report holds the scenario's figure, its runs and
 * the fleet's figures from its MQTT messages (energy per inference, lost, duplicated).
 */
async function fleetScenarioCommand(file: string, opts: FleetDevicesOptions, global: GlobalOptions): Promise<FleetReport> {
  if (opts.seconds !== undefined) throw new Error('--seconds is for the devices\' own streams; a scenario runs to LoadGen\'s minimums (--quick for a short run)');
  const spec = fleetScenarioSpec({ ...opts, scenario: opts.scenario! });
  const config = await loadConfig(global);
  const fleet = await loadFleetFile(file);
  const url = opts.url ?? config.mqtt.url;
  if (!url) throw new Error('say which broker: --url mqtt://host:port (or config mqtt.url)');
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const out = opts.out ?? 'fleet-scenario.json';
  const log = (line: string): void => console.error(`edgerun: ${line}`);
  const library = await DatasetSource.open(fleetDataPath({ data: opts.data, baseDir: fleet.baseDir }));
  // Subscribed before the devices start: it hears every device from its birth on.
  const consumer = await startScenarioConsumer({ config, url, prefix, fleet: fleet.fleet, ...(opts.protocol ? { protocol: opts.protocol } : {}) });
  const run = `${fleet.fleet}-${spec.scenario.toLowerCase()}-${Date.now().toString(36)}`;
  const stop = interruptOnSignals(log);
  let host: FleetHost | undefined;
  try {
    host = startFleetHost({
      devices: fleet.devices, fleet: fleet.fleet, url, protocolVersion: opts.protocol, workers: opts.workers, stateDir: resolve(opts.stateDir),
      prefix: opts.prefix, signing: opts.sign ? true : undefined, config, baseDir: fleet.baseDir, data: opts.data, drainMs: opts.drainMs, queries: true, log,
    });
    console.log(`fleet ${fleet.fleet}: starting ${fleet.devices.length} device(s) on ${redactUrl(url)} for ${spec.scenario} (${spec.mode})`);
    await Promise.race([host.started, stop.came]);
    const devices = host.devices().filter((d) => d.state === 'online').map((d) => d.id);
    let outcome: FleetLoadOutcome = { queries: { issued: 0, samples: 0, completed: 0, lost: 0, duplicated: 0, unknown: 0 }, busyShare: 0 };
    if (!stop.signal.aborted) {
      if (!devices.length) throw new Error(`no device of fleet ${fleet.fleet} started: ${host.devices()[0]?.error ?? 'unknown'}`);
      console.log(`fleet ${fleet.fleet}: ${devices.length} device(s) online; load generator on the main thread, queries in turn to each`);
      const load = new FleetLoadGenerator({ host, devices, library: { count: library.count, label: (i) => library.dataset.labels[i]! }, run, log, progress: opts.progress });
      consumer.onResult((body) => load.offer(body));
      outcome = await load.run(spec, stop.signal);
    }
    await host.stop();
    await consumer.settle(run);
    const by = stop.by();
    const report: FleetReport = {
      ...scenarioReport(spec, outcome, devices.length, { kind: 'edgerun-fleet-report', created: new Date().toISOString(), scenarios: [], metrics: consumer.collector.summary({ loadGeneratorCpuShare: outcome.busyShare }) }),
      ...(by ? { interrupted: { signal: by, detail: `${outcome.queries.completed} of ${outcome.queries.issued} queries completed${devices.length ? '' : ', before the devices were up'}` } } : {}),
    };
    await writeReport(out, report, opts.html, fleetReport(report));
    printScenario(report);
    console.log(`result${by ? ` (partial: interrupted by ${by})` : ''}: ${out}${opts.html ? `, report: ${opts.html}` : ''}`);
    if (by) process.exitCode = stop.exitCode();
    else if (outcome.queries.lost || outcome.queries.duplicated || report.metrics!.fleet.lost) process.exitCode = 1;
    return report;
  } finally {
    stop.dispose();
    await host?.stop();
    await consumer.end();
  }
}

/** The scenario's lines on the console. */
export function printScenario(report: FleetReport): void {
  const f = report.fleetScenario!;
  const m = report.metrics!.fleet;
  const r = report.scenarios[0];
  console.log(`${f.scenario} (${f.mode}) over ${f.devices} devices: ${f.metric.name} ${Number(f.metric.value.toFixed(3))} ${f.metric.unit}`
    + `${r ? `; ${r.queries} queries, ${r.samples} samples in ${(r.durationMs / 1000).toFixed(1)} s, p50 ${r.latency.p50Ms} ms p90 ${r.latency.p90Ms} ms p99 ${r.latency.p99Ms} ms` : ''}`
    + `${f.accuracy !== undefined ? `, accuracy ${(f.accuracy * 100).toFixed(2)} %` : ''}; valid: ${f.valid ? 'yes' : `no${r ? `: ${r.invalidBecause.join('; ')}` : ''}`}`);
  console.log(`queries: ${f.queries.issued} issued, ${f.queries.completed} completed, ${f.queries.lost} lost, ${f.queries.duplicated} duplicated results, ${f.queries.unknown} unknown; `
    + `messages: lost ${m.lost}, duplicated ${m.duplicated}; energy per inference ${m.energyPerInferenceJ === undefined ? '-' : `${(m.energyPerInferenceJ * 1e6).toPrecision(3)} µJ`}; `
    + `load generator thread busy ${(f.loadGeneratorBusyShare * 100).toFixed(1)} %`);
}
