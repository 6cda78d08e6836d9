/**
 * A load generator after MLPerf Inference LoadGen: it issues queries to a system under test (SUT)
 * by a scenario's rules, timestamps their completions on its own Timeline and judges the run. It
 * never looks inside the SUT — the SUT sees queries, the load generator sees completions.
 *
 * Scenarios (LoadGen's definitions):
 * - SingleStream: one sample per query, the next issued when the previous completes; metric p90.
 * - MultiStream: 8 samples per query, the next issued when the previous completes; metric p99.
 * - Server: one sample per query, arrivals Poisson at a target QPS whatever the SUT does; valid when
 *   the p99 latency meets the bound (searchServerQps finds the highest such QPS).
 * - Offline: every sample in one query; metric samples per second.
 * Modes: performance (random samples, latency) and accuracy (every sample of the library once,
 * predictions compared with the labels; latency not judged).
 */
import { LatencyRecorder, type EncodedLatency, type LatencySummary } from '../latency.js';
import type { Timeline } from './timeline.js';

export const SCENARIOS = ['SingleStream', 'MultiStream', 'Server', 'Offline'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Query {
  id: number;
  /** Indices into the sample library. */
  samples: number[];
}

export interface SystemUnderTest {
  /** Starts a query; calls `complete` once when all its samples are done, with one predicted class per sample. */
  issue(query: Query, complete: (predictions?: readonly number[]) => void): void;
}

/** The samples the SUT can be asked about (LoadGen's QuerySampleLibrary), with their labels for accuracy mode. */
export interface SampleLibrary {
  count: number;
  label(index: number): number;
}

export interface ScenarioSettings {
  /** Minimum run time, ms (LoadGen: 600 000). */
  minDurationMs: number;
  /** Minimum queries (Offline: minimum samples in its one query). */
  minQueryCount: number;
  samplesPerQuery: number;
  /** The percentile the latency metric is taken at. */
  latencyPercentile: 90 | 99;
  /** Server: Poisson arrival rate, queries per second. */
  targetQps?: number;
  /** Server: the bound on the percentile latency, ms. */
  latencyBoundMs?: number;
  /** Offline: the throughput expected (LoadGen's offline_expected_qps): the query holds enough samples to last 1.1 × the minimum duration at it. */
  expectedQps?: number;
}

/**
 * LoadGen's defaults (mlcommons/inference mlperf.conf since v2.0 and test_settings_internal.cc):
 * 600 s everywhere; SingleStream 1024 queries, MultiStream 662 queries of 8 samples, Server 270 336
 * queries, Offline one query of at least 24 576 samples.
 */
export const LOADGEN_DEFAULTS: Readonly<Record<Scenario, ScenarioSettings>> = {
  SingleStream: { minDurationMs: 600_000, minQueryCount: 1024, samplesPerQuery: 1, latencyPercentile: 90 },
  MultiStream: { minDurationMs: 600_000, minQueryCount: 662, samplesPerQuery: 8, latencyPercentile: 99 },
  Server: { minDurationMs: 600_000, minQueryCount: 270_336, samplesPerQuery: 1, latencyPercentile: 99 },
  Offline: { minDurationMs: 600_000, minQueryCount: 24_576, samplesPerQuery: 24_576, latencyPercentile: 99 },
};

/**
 * `--quick`: a smoke-test scale for development, not a valid result: 10 s and the fewest queries
 * LoadGen's early-stopping estimate accepts for the percentile (64 at p90, 662 at p99), Offline 1024 samples.
 */
export const QUICK_SETTINGS: Readonly<Record<Scenario, ScenarioSettings>> = {
  SingleStream: { ...LOADGEN_DEFAULTS.SingleStream, minDurationMs: 10_000, minQueryCount: 64 },
  MultiStream: { ...LOADGEN_DEFAULTS.MultiStream, minDurationMs: 10_000, minQueryCount: 662 },
  Server: { ...LOADGEN_DEFAULTS.Server, minDurationMs: 10_000, minQueryCount: 662 },
  Offline: { ...LOADGEN_DEFAULTS.Offline, minDurationMs: 10_000, minQueryCount: 1024, samplesPerQuery: 1024 },
};

export interface RunOptions {
  scenario: Scenario;
  mode: 'performance' | 'accuracy';
  settings: ScenarioSettings;
  timeline: Timeline;
  /** Uniform draws in [0, 1) (seeded): sample choice and Server arrivals. */
  uniform: () => number;
  onQueryDone?: (done: number) => void;
  /** Ends the run early (Ctrl-C): it resolves at once with what completed so far, marked interrupted (queries in flight are left out). */
  signal?: AbortSignal;
}

export interface ScenarioResult {
  scenario: Scenario;
  mode: 'performance' | 'accuracy';
  queries: number;
  samples: number;
  durationMs: number;
  /** Query latency (issue → completion). */
  latency: LatencySummary;
  /** The scenario's metric percentile, ms (p90 SingleStream, p99 otherwise). */
  percentileMs: number;
  samplesPerSecond: number;
  /** Server: the arrival rate offered. */
  targetQps?: number;
  /** Accuracy mode: correct predictions / samples. */
  accuracy?: number;
  /** Minimum duration and query count met, and (Server) the latency bound. */
  valid: boolean;
  /** Why the run is not valid. */
  invalidBecause: string[];
  /** Latency (ms) at percentiles 0..99.9 for plots. */
  distribution: { percentile: number; ms: number }[];
  /** The query latencies' histogram, encoded: runs of several load generators (fleet agents) add up exactly. */
  histogram?: EncodedLatency;
  /** Ended early by its signal: the figures are of the queries completed until then. */
  interrupted?: true;
}

/** Runs one scenario to the end; resolves once the last query has completed. */
export function runScenario(sut: SystemUnderTest, library: SampleLibrary, o: RunOptions): Promise<ScenarioResult> {
  const s = o.settings;
  if (library.count < 1) throw new Error('the sample library is empty');
  if (o.scenario === 'Server' && !(s.targetQps! > 0)) throw new Error(`Server needs a target QPS > 0, got ${s.targetQps}`);
  const recorder = new LatencyRecorder();
  const accuracyMode = o.mode === 'accuracy';
  const perQuery = o.scenario === 'SingleStream' || o.scenario === 'Server' ? 1 : o.scenario === 'MultiStream' ? s.samplesPerQuery
    : Math.max(s.samplesPerQuery, s.minQueryCount, Math.ceil((s.expectedQps ?? 0) * (s.minDurationMs / 1000) * 1.1));
  let nextSample = 0;
  const pick = (n: number): number[] => Array.from({ length: n }, () =>
    accuracyMode ? nextSample++ % library.count : Math.min(library.count - 1, Math.floor(o.uniform() * library.count)));
  // Accuracy mode covers the library once; performance mode runs until both minimums are met.
  const accuracyQueries = Math.ceil(library.count / perQuery);
  const started = o.timeline.now();
  let issued = 0, completed = 0, samples = 0, correct = 0;
  let lastDone = started;
  const enough = (): boolean => accuracyMode
    ? issued >= accuracyQueries
    : o.scenario === 'Offline' ? issued >= 1 : issued >= s.minQueryCount && o.timeline.now() - started >= s.minDurationMs;

  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      o.signal?.removeEventListener('abort', finish);
      resolve(summarise());
    };
    if (o.signal?.aborted) return finish();
    o.signal?.addEventListener('abort', finish, { once: true });
    /** `t0`: when the query is due (Server: its scheduled arrival, so a late timer counts as latency). */
    const issue = (t0 = o.timeline.now()): void => {
      if (finished) return;
      const count = accuracyMode ? Math.min(perQuery, library.count - issued * perQuery) : perQuery;
      const query: Query = { id: issued++, samples: pick(count) };
      let done = false;
      try {
        sut.issue(query, (predictions) => {
          if (done) return reject(new Error(`query ${query.id} completed twice`));
          done = true;
          if (finished) return; // completed after an interruption: not in the figures
          const t1 = o.timeline.now();
          recorder.record(t1 - t0);
          lastDone = Math.max(lastDone, t1);
          completed++;
          samples += query.samples.length;
          if (accuracyMode) {
            if (predictions?.length !== query.samples.length) return reject(new Error(`accuracy mode: query ${query.id} returned ${predictions?.length ?? 0} predictions for ${query.samples.length} samples`));
            query.samples.forEach((idx, i) => { if (predictions[i] === library.label(idx)) correct++; });
          }
          o.onQueryDone?.(completed);
          if (o.scenario !== 'Server' && !enough()) issue();
          else if (completed === issued && (o.scenario !== 'Server' || enough())) finish();
        });
      } catch (e) {
        reject(e);
      }
    };
    if (o.scenario === 'Server') {
      // Poisson process: exponential gaps between arrivals, independent of completions.
      const meanGapMs = 1000 / s.targetQps!;
      let arrival = started;
      // A timer fires late under load: every arrival already due is issued then, not one per timer.
      const arrive = (): void => {
        if (finished) return;
        do {
          issue(arrival);
          if (enough()) return;
          arrival += -Math.log(1 - o.uniform()) * meanGapMs;
        } while (arrival <= o.timeline.now());
        o.timeline.at(arrival, arrive);
      };
      o.timeline.at(arrival, arrive);
    } else {
      o.timeline.at(started, () => issue());
    }
  });

  function summarise(): ScenarioResult {
    const latency = recorder.summary();
    const durationMs = lastDone - started;
    const percentileMs = recorder.at(s.latencyPercentile);
    const invalidBecause: string[] = [];
    const interrupted = o.signal?.aborted === true;
    if (interrupted) invalidBecause.push(`interrupted after ${completed} of ${issued} queries issued`);
    if (!accuracyMode) {
      if (durationMs < s.minDurationMs) invalidBecause.push(`ran ${Math.round(durationMs)} ms < minimum ${s.minDurationMs} ms`);
      if (o.scenario === 'Offline' ? samples < s.minQueryCount : completed < s.minQueryCount) invalidBecause.push(`${o.scenario === 'Offline' ? `${samples} samples` : `${completed} queries`} < minimum ${s.minQueryCount}`);
      if (s.latencyBoundMs !== undefined && o.scenario !== 'Offline' && percentileMs > s.latencyBoundMs) invalidBecause.push(`p${s.latencyPercentile} ${percentileMs} ms > bound ${s.latencyBoundMs} ms`);
    }
    return {
      scenario: o.scenario, mode: o.mode, queries: completed, samples, durationMs, latency, percentileMs,
      samplesPerSecond: durationMs > 0 ? samples / (durationMs / 1000) : 0,
      ...(o.scenario === 'Server' ? { targetQps: s.targetQps } : {}),
      ...(accuracyMode ? { accuracy: samples ? correct / samples : 0 } : {}),
      valid: invalidBecause.length === 0, invalidBecause, distribution: recorder.distribution(), histogram: recorder.encode(),
      ...(interrupted ? { interrupted: true as const } : {}),
    };
  }
}

export interface QpsSearch {
  /** The highest QPS tried whose run met the bound (0 when none did). */
  qps: number;
  /** False when every rate tried met the bound (the run budget ran out first): qps is then only a lower bound. */
  bracketed: boolean;
  tried: { qps: number; percentileMs: number; valid: boolean }[];
  best?: ScenarioResult;
  /** Ended by the signal: the rates tried until then (the interrupted run is not among them). */
  interrupted?: true;
}

/**
 * Server mode's question: the highest arrival rate whose p99 meets the bound. Doubles from
 * `startQps` until a run fails, then bisects until the bracket is within `tolerance` (relative).
 * `run` gives each attempt a fresh SUT/timeline (a queue left over would skew the next).
 */
export async function searchServerQps(
  run: (qps: number) => Promise<ScenarioResult>,
  o: { startQps: number; tolerance?: number; maxRuns?: number; signal?: AbortSignal },
): Promise<QpsSearch> {
  const tolerance = o.tolerance ?? 0.02;
  const maxRuns = o.maxRuns ?? 30;
  const tried: QpsSearch['tried'] = [];
  let best: ScenarioResult | undefined;
  const attempt = async (qps: number): Promise<boolean> => {
    if (o.signal?.aborted) return false;
    const r = await run(qps);
    if (r.interrupted || o.signal?.aborted) return false;
    const valid = r.valid;
    tried.push({ qps, percentileMs: r.percentileMs, valid });
    if (valid && (!best || qps > best.targetQps!)) best = r;
    return valid;
  };
  let lo = 0, hi = o.startQps;
  while (tried.length < maxRuns && (await attempt(hi))) {
    lo = hi;
    hi *= 2;
  }
  while (tried.length < maxRuns && (hi - lo) / hi > tolerance && !o.signal?.aborted) {
    const mid = lo === 0 ? hi / 2 : (lo + hi) / 2;
    if (await attempt(mid)) lo = mid;
    else hi = mid;
  }
  return { qps: lo, bracketed: tried.some((t) => !t.valid), tried, ...(best ? { best } : {}), ...(o.signal?.aborted ? { interrupted: true as const } : {}) };
}

/**
 * One result from several load generators' runs of one scenario over disjoint parts of a fleet
 * (fleet agents, each with its share of the devices and of the rate): queries and samples add,
 * latency histograms add bucket by bucket (so the percentiles are the whole fleet's), the duration
 * is the longest part's, the offered QPS adds. Valid when every part met its minimums and the merged
 * percentile meets the bound.
 */
export function mergeScenarioResults(parts: readonly ScenarioResult[], settings: ScenarioSettings): ScenarioResult {
  const first = parts[0];
  if (!first) throw new Error('no scenario result to merge');
  const recorder = new LatencyRecorder();
  for (const p of parts) {
    if (!p.histogram) throw new Error(`a ${p.scenario} result without its latency histogram cannot be merged`);
    if (p.scenario !== first.scenario || p.mode !== first.mode) throw new Error(`cannot merge a ${p.scenario} (${p.mode}) result with a ${first.scenario} (${first.mode}) one`);
    recorder.add(p.histogram);
  }
  const sum = (f: (p: ScenarioResult) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const samples = sum((p) => p.samples);
  const durationMs = Math.max(...parts.map((p) => p.durationMs));
  const percentileMs = recorder.at(settings.latencyPercentile);
  const invalidBecause = parts.flatMap((p) => p.invalidBecause.filter((why) => !why.startsWith(`p${settings.latencyPercentile} `)));
  if (first.mode === 'performance' && settings.latencyBoundMs !== undefined && first.scenario !== 'Offline' && percentileMs > settings.latencyBoundMs) {
    invalidBecause.push(`p${settings.latencyPercentile} ${percentileMs} ms > bound ${settings.latencyBoundMs} ms`);
  }
  const accuracy = first.mode === 'accuracy' && samples ? sum((p) => (p.accuracy ?? 0) * p.samples) / samples : undefined;
  return {
    scenario: first.scenario, mode: first.mode, queries: sum((p) => p.queries), samples, durationMs, latency: recorder.summary(), percentileMs,
    samplesPerSecond: durationMs > 0 ? samples / (durationMs / 1000) : 0,
    ...(first.scenario === 'Server' ? { targetQps: sum((p) => p.targetQps ?? 0) } : {}),
    ...(accuracy !== undefined ? { accuracy } : {}),
    valid: invalidBecause.length === 0, invalidBecause, distribution: recorder.distribution(), histogram: recorder.encode(),
    ...(parts.some((p) => p.interrupted) ? { interrupted: true as const } : {}),
  };
}
