/**
 * LoadGen scenarios across a fleet's devices, the load generator strictly apart from the system
 * under test (MLPerf LoadGen's separation). It runs on the fleet host's main thread, never in the
 * device threads: runtime/fleet/loadgen.ts's scenario logic issues each query through FleetSut to a
 * device (host.issue → its worker thread), the device runs it through its own pipeline and publishes
 * its results like any other, and the load generator learns a query is complete only from those
 * results as its own MQTT consumer receives them from the broker. Query latency is that arrival
 * minus the query's (scheduled) issue, on this host's clock.
 *
 *   const consumer = await startScenarioConsumer({ config, url, prefix, fleet });   // before the devices start
 *   const load = new FleetLoadGenerator({ host, devices, library, run, log });
 *   consumer.onResult((body) => load.offer(body));
 *   const outcome = await load.run(spec);
 */
import { SingleBar, Presets } from 'cli-progress';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Random } from '../../../drivers/crossbar/random.js';
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import type { Config } from '../../../runtime/config.js';
import { FleetSut, type FleetSutCounters } from '../../../runtime/fleet/fleet-sut.js';
import {
  LOADGEN_DEFAULTS, QUICK_SETTINGS, SCENARIOS, runScenario, searchServerQps,
  type SampleLibrary, type Scenario, type ScenarioResult, type ScenarioSettings,
} from '../../../runtime/fleet/loadgen.js';
import { FleetMetricsCollector } from '../../../runtime/fleet/metrics.js';
import { stopTopic } from '../../../runtime/fleet/fleet-protocol.js';
import { scenarioMetric, type FleetReport, type FleetScenarioSection, type QpsSearchSummary } from '../../../runtime/fleet/report.js';
import { realTimeline } from '../../../runtime/fleet/timeline.js';
import { Listener } from '../../../runtime/telemetry/listener.js';
import { deviceRoot, fleetFilter } from '../../../runtime/telemetry/topics.js';
import { toolClient } from '../commands/listen.js';
import type { FleetHost } from './host.js';

export interface FleetLoadSpec {
  scenario: Scenario;
  mode: 'performance' | 'accuracy';
  /** Server: targetQps for one run; without it, a search for the highest QPS meeting latencyBoundMs. */
  settings: ScenarioSettings;
  /** Server without a target QPS: first rate tried, the bracket's relative width to stop at, and at most this many runs. */
  search?: { startQps: number; tolerance: number; maxRuns: number };
  /** Sample choice and Server arrivals. */
  seed: number;
  /** The part of the sample library this load generator covers, as fractions (fleet agents in accuracy mode); default all of it. */
  librarySlice?: { from: number; to: number };
}

export interface FleetLoadOutcome {
  /** The run; for a Server search, its best valid run (none when no rate met the bound). */
  result?: ScenarioResult;
  search?: QpsSearchSummary;
  /** Over every run: queries issued and completed, results duplicated or naming an unknown query. */
  queries: FleetSutCounters & { lost: number };
  /** The load generator's thread busy over wall time (its event-loop utilisation) during the runs: it must not be the bottleneck. */
  busyShare: number;
  /** Fleet agents: `results` messages their load generators' consumers received, together (each result once: the samples completed). */
  resultsReceived?: number;
}

/** Lower-case names on the command line (`--scenario server`), LoadGen's in results. */
export function scenarioNamed(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.toLowerCase() === name.toLowerCase());
  if (!s) throw new Error(`--scenario must be one of ${SCENARIOS.map((x) => x.toLowerCase()).join(', ')}, got '${name}'`);
  return s;
}

/** The command line's scenario flags (`fleet devices` and `fleet bench`). */
export interface ScenarioFlags {
  /** singlestream, multistream, server, offline. */
  scenario?: string;
  mode?: string;
  quick?: boolean;
  targetQps?: number;
  p99Bound?: number;
  offlineQps?: number;
  startQps?: number;
  seed?: number;
  /** LoadGen's user.conf overrides of min_duration (s) and min_query_count (Offline: samples). */
  minDuration?: number;
  minQueries?: number;
}

/** A scenario's settings from the command line's flags, checked: LoadGen's defaults, or --quick's. */
export function fleetScenarioSpec(o: ScenarioFlags & { scenario: string }): FleetLoadSpec {
  const scenario = scenarioNamed(o.scenario);
  const mode = o.mode ?? 'performance';
  if (mode !== 'performance' && mode !== 'accuracy') throw new Error(`--mode must be performance or accuracy, got '${mode}'`);
  if (scenario === 'Server' && o.targetQps === undefined && (mode === 'accuracy' || o.p99Bound === undefined)) {
    throw new Error(mode === 'accuracy' ? 'server in accuracy mode needs --target-qps' : 'server needs --target-qps (one run at that rate) or --p99-bound (search the highest rate meeting it)');
  }
  const settings: ScenarioSettings = {
    ...(o.quick ? QUICK_SETTINGS : LOADGEN_DEFAULTS)[scenario],
    ...(o.p99Bound !== undefined ? { latencyBoundMs: o.p99Bound } : {}),
    ...(o.offlineQps !== undefined ? { expectedQps: o.offlineQps } : {}),
    ...(scenario === 'Server' && o.targetQps !== undefined ? { targetQps: o.targetQps } : {}),
    ...(o.minDuration !== undefined ? { minDurationMs: o.minDuration * 1000 } : {}),
    ...(o.minQueries !== undefined ? { minQueryCount: o.minQueries } : {}),
  };
  return { scenario, mode, settings, search: { startQps: o.startQps ?? 10, tolerance: 0.03, maxRuns: o.quick ? 14 : 30 }, seed: o.seed ?? 1 };
}

export interface ScenarioConsumer {
  /** Everything the devices published, through the Listener (signatures, de-duplication, gaps). */
  readonly collector: FleetMetricsCollector;
  /** Each new `results` body, to the load generator. */
  onResult(fn: (body: unknown) => void): void;
  /** `results` messages received (duplicates included): with per-device subscriptions, only these devices'. */
  resultsReceived(): number;
  /**
   * Resolves once everything the broker acknowledged before the call has reached this consumer: a
   * marker it publishes to itself (on the run's stop topic) arrives behind what the broker queued for it.
   */
  settle(run: string): Promise<void>;
  end(): Promise<void>;
}

/**
 * The load generator's own consumer of the fleet's messages: every message to the metrics collector
 * (energy per inference, lost, duplicated …) and every new result to the load generator. Subscribed
 * when it resolves, so start it before the devices. With `devices` (a fleet agent's share) it
 * subscribes to those devices' topics only: each agent's load generator hears its own devices, so
 * with K agents a result crosses the broker to one of them, not K times.
 */
export async function startScenarioConsumer(o: { config: Config; url: string; prefix: string; fleet: string; protocol?: 4 | 5; devices?: readonly string[] }): Promise<ScenarioConsumer> {
  // Devices stamp messages with wall-clock ms: arrivals on the same scale.
  const collector = new FleetMetricsCollector(new Listener({ prefix: o.prefix, verify: nativeVerify }), { now: () => Date.now() });
  let sink: (body: unknown) => void = () => undefined;
  let results = 0;
  const markers = new Map<string, () => void>();
  let refuse!: (e: Error) => void;
  const refused = new Promise<never>((_, reject) => { refuse = reject; });
  refused.catch(() => undefined);
  const mqtt = toolClient(o.config, {
    url: o.url, clientId: `edgerun-loadgen-${randomBytes(6).toString('hex')}`, clean: true, ...(o.protocol ? { protocol: o.protocol } : {}),
    onRefused: (r) => refuse(new Error(`the broker at ${redactUrl(o.url)} refused the load generator's connection: ${r}`)),
  });
  mqtt.onMessage((m) => {
    const marker = markers.get(m.topic);
    if (marker) return marker();
    const outcome = collector.offer(m.topic, m.payload, { retained: m.retain });
    if (outcome.status !== 'rejected' && outcome.message.kind === 'results') results++;
    if (outcome.status === 'new' && outcome.message.kind === 'results') sink(outcome.message.body);
  });
  const filters = o.devices ? o.devices.map((device) => `${deviceRoot({ prefix: o.prefix, fleet: o.fleet, device })}/+`) : [fleetFilter(o.prefix, o.fleet, '+')];
  const subscribed = new Promise<void>((resolve, reject) => {
    mqtt.onConnect(() => { void Promise.all(filters.map((f) => mqtt.subscribe(f, 1))).then(() => resolve(), reject); });
  });
  mqtt.connect();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the load generator's consumer could not subscribe on ${redactUrl(o.url)} within 30 s`)), 30_000); });
  try {
    await Promise.race([subscribed, refused, timeout]);
  } catch (e) {
    await mqtt.end();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const settle = async (run: string): Promise<void> => {
    const topic = stopTopic(o.prefix, o.fleet, run);
    const arrived = new Promise<void>((resolve) => markers.set(topic, resolve));
    await mqtt.subscribe(topic, 1);
    await mqtt.publish(topic, new TextEncoder().encode(run), { qos: 1 });
    await arrived;
    markers.delete(topic);
    await mqtt.unsubscribe(topic);
  };
  return { collector, onResult: (fn) => { sink = fn; }, resultsReceived: () => results, settle, end: () => mqtt.end() };
}

export class FleetLoadGenerator {
  #sut: FleetSut | undefined;
  readonly #totals: FleetSutCounters = { issued: 0, samples: 0, completed: 0, duplicated: 0, unknown: 0 };

  constructor(private readonly o: {
    host: FleetHost;
    /** The devices queries go to (online), in the order they take turns. */
    devices: string[];
    library: SampleLibrary;
    /** Names this load generator's queries (each run of a search gets `<run>-<k>`). */
    run: string;
    log: (line: string) => void;
    progress?: boolean;
    /** A run whose pending queries got no result for this long fails (results lost), ms (default 120 s). */
    stallMs?: number;
  }) {}

  /** A new `results` body from the consumer. */
  offer(body: unknown): void {
    this.#sut?.offerResult(body);
  }

  /** Runs the scenario (a Server search: one run per rate tried) and resolves with its outcome; `signal` ends it early with what was measured (marked interrupted). */
  async run(spec: FleetLoadSpec, signal?: AbortSignal): Promise<FleetLoadOutcome> {
    const rng = new Random(spec.seed);
    const uniform = (): number => rng.uniform();
    const elu0 = performance.eventLoopUtilization();
    let step = 0;
    const once = (settings: ScenarioSettings): Promise<ScenarioResult> => this.#once(spec, settings, `${this.o.run}-${step++}`, uniform, signal);
    let runs: { result?: ScenarioResult; search?: QpsSearchSummary };
    try {
      runs = await runOrSearch(spec, once, this.o.log, '', signal);
    } finally {
      this.#sut = undefined;
    }
    const busyShare = performance.eventLoopUtilization(elu0).utilization;
    const t = this.#totals;
    return { ...runs, queries: { ...t, lost: t.issued - t.completed }, busyShare };
  }

  async #once(spec: FleetLoadSpec, settings: ScenarioSettings, run: string, uniform: () => number, signal?: AbortSignal): Promise<ScenarioResult> {
    const { host, devices } = this.o;
    const whole = this.o.library;
    const from = Math.round(whole.count * (spec.librarySlice?.from ?? 0));
    const to = Math.round(whole.count * (spec.librarySlice?.to ?? 1));
    const library: SampleLibrary = { count: to - from, label: (i) => whole.label(from + i) };
    const sut = new FleetSut({ run, devices, dispatch: (device, q) => host.issue(device, q), wallClock: { now: () => Date.now() }, sampleOffset: from });
    this.#sut = sut;
    const queries = spec.mode === 'accuracy'
      ? Math.ceil(library.count / (spec.scenario === 'MultiStream' ? settings.samplesPerQuery : spec.scenario === 'Offline' ? Infinity : 1))
      : spec.scenario === 'Offline' ? 1 : settings.minQueryCount;
    const bar = this.o.progress !== false && process.stderr.isTTY
      ? new SingleBar({ stream: process.stderr, format: `${spec.scenario}${settings.targetQps ? ` @ ${settings.targetQps.toFixed(1)} QPS` : ''} over ${devices.length} devices [{bar}] {value} queries (minimum ${queries}, ${settings.minDurationMs / 1000} s)` }, Presets.shades_classic)
      : undefined;
    bar?.start(queries, 0);
    let fail!: (e: Error) => void;
    const failed = new Promise<never>((_, reject) => { fail = reject; });
    const refused = (r: { run: string; id: number; error: string }): void => { if (r.run === run) fail(new Error(`query ${r.id} refused: ${r.error}`)); };
    host.on('query-refused', refused);
    // Results that never come (a device gone) would hold the run for ever: a run with queries pending and no completion for stallMs fails.
    const stallMs = this.o.stallMs ?? 120_000;
    let seen = -1, since = performance.now();
    const watch = setInterval(() => {
      const done = sut.counters().completed;
      if (done !== seen || sut.pending === 0) { seen = done; since = performance.now(); return; }
      if (performance.now() - since > stallMs) fail(new Error(`${sut.pending} quer${sut.pending === 1 ? 'y' : 'ies'} of run ${run} without all results after ${Math.round(stallMs / 1000)} s: results lost`));
    }, 1000);
    try {
      return await Promise.race([
        runScenario(sut, library, { scenario: spec.scenario, mode: spec.mode, settings, timeline: realTimeline, uniform, onQueryDone: (n) => bar?.update(n), ...(signal ? { signal } : {}) }),
        failed,
      ]);
    } finally {
      clearInterval(watch);
      host.off('query-refused', refused);
      bar?.stop();
      const c = sut.counters();
      for (const k of Object.keys(c) as (keyof FleetSutCounters)[]) this.#totals[k] += c[k];
    }
  }
}

/**
 * A scenario's runs through `once`: for Server without a target rate, the search for the highest
 * QPS whose p99 meets the bound (one run per rate tried); otherwise one run. `where` ends the log line.
 */
export async function runOrSearch(spec: FleetLoadSpec, once: (settings: ScenarioSettings) => Promise<ScenarioResult>, log: (line: string) => void, where: string, signal?: AbortSignal): Promise<{ result?: ScenarioResult; search?: QpsSearchSummary }> {
  if (spec.scenario !== 'Server' || spec.settings.targetQps !== undefined) return { result: await once(spec.settings) };
  if (!spec.search) throw new Error('Server needs a target QPS, or a search for one');
  const s = await searchServerQps((qps) => once({ ...spec.settings, targetQps: qps }), { ...spec.search, ...(signal ? { signal } : {}) });
  const search: QpsSearchSummary = { qps: s.qps, boundMs: spec.settings.latencyBoundMs!, bracketed: s.bracketed, tried: s.tried, ...(s.interrupted ? { interrupted: true as const } : {}) };
  log(`server: highest QPS meeting p99 ≤ ${search.boundMs} ms${where}${s.interrupted ? ' (search interrupted)' : ''}: ${s.bracketed ? '' : 'at least '}${s.qps.toFixed(1)} (${s.tried.length} runs: ${s.tried.map((t) => `${t.qps.toFixed(1)}→${t.percentileMs} ms${t.valid ? '' : ' ✗'}`).join(', ')})`);
  return { ...(s.best ? { result: s.best } : {}), search };
}

/** A fleet report with the scenario added: its run, its LoadGen figure, the queries' accounting, the load generator's busy share. */
export function scenarioReport(spec: FleetLoadSpec, outcome: FleetLoadOutcome, devices: number, report: FleetReport): FleetReport {
  const r = outcome.result;
  const fleetScenario: FleetScenarioSection = {
    scenario: spec.scenario, mode: spec.mode, devices, metric: scenarioMetric(r, outcome.search), ...(r?.accuracy !== undefined ? { accuracy: r.accuracy } : {}),
    valid: r?.valid ?? false, ...(outcome.search ? { search: outcome.search } : {}), queries: outcome.queries, loadGeneratorBusyShare: outcome.busyShare,
    ...(outcome.resultsReceived !== undefined ? { resultsReceived: outcome.resultsReceived } : {}),
  };
  return { ...report, scenarios: r ? [r] : [], fleetScenario };
}
