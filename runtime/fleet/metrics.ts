/**
 * Fleet figures from what the devices publish, nothing else: a consumer hands every MQTT message
 * it receives to `offer`, the telemetry listener (runtime/telemetry/listener.ts) checks signatures
 * and de-duplicates, and this collector sums up the accepted ones — per device and fleet-wide:
 * end-to-end latency (device timestamp → received), throughput, accuracy, energy per inference and
 * its breakdown, average power, battery left, fallbacks, guard and governor events, messages lost
 * (sequence gaps) and duplicated.
 */
import { LatencyRecorder, type EncodedLatency, type LatencySummary } from '../latency.js';
import { addBreakdown, ZERO_BREAKDOWN, type EnergyBreakdown } from '../power/energy-model.js';
import type { Clock } from '../ports.js';
import type { ListenOutcome, Listener } from '../telemetry/listener.js';
import { SeqRanges } from './seq-ranges.js';

export interface DeviceFigures {
  results: number;
  /** End-to-end: the message's device timestamp to its arrival here. */
  latency: LatencySummary;
  /** Results per second over the span from the first to the last result. */
  resultsPerSecond: number;
  accuracy?: number;
  energyPerInferenceJ?: number;
  /** Latest breakdown the device's telemetry reported (joules since it started). */
  energyBreakdownJ?: EnergyBreakdown;
  averagePowerW?: number;
  batteryPercent?: number;
  /** Results served by the digital fallback. */
  fallbacks: number;
  /** Guard and governor events (events with type guard, governor, placement, policy, decision). */
  events: number;
  lost: number;
  duplicated: number;
}

export interface FleetMetrics {
  devices: Record<string, DeviceFigures>;
  fleet: DeviceFigures;
  rejected: number;
  /** CPU time of the load generator / consumer process over wall time of the run, when measured. */
  loadGeneratorCpuShare?: number;
}

const GUARD_GOVERNOR_EVENTS = new Set(['guard', 'governor', 'placement', 'policy', 'decision']);

type Counts = Pick<DeviceTally, 'results' | 'judged' | 'correct' | 'energyJ' | 'energyCounted' | 'fallbacks' | 'events' | 'firstTs' | 'lastTs'>;

class DeviceTally {
  readonly latency = new LatencyRecorder();
  results = 0;
  judged = 0;
  correct = 0;
  energyJ = 0;
  energyCounted = 0;
  fallbacks = 0;
  events = 0;
  firstTs = Infinity;
  lastTs = -Infinity;
  /** The latest telemetry's (by device timestamp). */
  breakdown?: EnergyBreakdown;
  battery?: number;
  telemetryTs = -Infinity;
  /** For merging consumers' partials: each (signer, session) stream's seqs, its results' seqs, and the seqs its births set aside for a will. */
  readonly streams = new Map<string, { seqs: SeqRanges; results: SeqRanges; reserved: Set<number> }>();

  /** Adds another tally's counts (a device's over consumers, or devices into a group). */
  absorb(t: Counts): void {
    this.results += t.results; this.judged += t.judged; this.correct += t.correct; this.energyJ += t.energyJ; this.energyCounted += t.energyCounted;
    this.fallbacks += t.fallbacks; this.events += t.events;
    this.firstTs = Math.min(this.firstTs, t.firstTs); this.lastTs = Math.max(this.lastTs, t.lastTs);
  }

  stream(key: string): { seqs: SeqRanges; results: SeqRanges; reserved: Set<number> } {
    let s = this.streams.get(key);
    if (!s) this.streams.set(key, (s = { seqs: new SeqRanges(), results: new SeqRanges(), reserved: new Set() }));
    return s;
  }

  toPartial(duplicated: number): DevicePartial {
    return {
      results: this.results, judged: this.judged, correct: this.correct, energyJ: this.energyJ, energyCounted: this.energyCounted,
      fallbacks: this.fallbacks, events: this.events, firstTs: Number.isFinite(this.firstTs) ? this.firstTs : null, lastTs: Number.isFinite(this.lastTs) ? this.lastTs : null,
      ...(this.telemetryTs > -Infinity ? { telemetryTs: this.telemetryTs } : {}),
      ...(this.breakdown ? { breakdownJ: this.breakdown } : {}), ...(this.battery !== undefined ? { batteryPercent: this.battery } : {}),
      latency: this.latency.encode(), duplicated,
      streams: Object.fromEntries([...this.streams].map(([k, s]) => [k, { seqs: s.seqs.toJSON(), results: s.results.toJSON(), reserved: [...s.reserved] }])),
    };
  }
}

/**
 * What one consumer of a shared subscription saw of a device, in a form that adds up exactly with
 * the other consumers' (mergePartials): counts, the latency histogram (HdrHistogram, encoded), and
 * per stream the seqs seen, so lost and duplicated are judged over the union.
 */
export interface DevicePartial {
  results: number; judged: number; correct: number; energyJ: number; energyCounted: number;
  fallbacks: number; events: number; firstTs: number | null; lastTs: number | null;
  telemetryTs?: number; breakdownJ?: EnergyBreakdown; batteryPercent?: number;
  latency: EncodedLatency;
  /** Duplicates this consumer's listener caught by itself. */
  duplicated: number;
  streams: Record<string, { seqs: number[]; results: number[]; reserved: number[] }>;
}

export interface CollectorPartial {
  kind: 'edgerun-fleet-partial';
  devices: Record<string, DevicePartial>;
  rejected: number;
  /** The consumer's CPU time over its wall time. */
  cpuShare?: number;
}

const record = (x: unknown): Record<string, unknown> | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? x as Record<string, unknown> : undefined);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

export class FleetMetricsCollector {
  readonly #devices = new Map<string, DeviceTally>();
  readonly #fleetLatency = new LatencyRecorder();

  /** Results that arrive before this (clock ms) are counted but not timed (a warm-up). */
  #timedFrom = -Infinity;

  /** `clock` stamps arrivals; it must share its epoch with the devices' timestamps (wall time across machines). */
  constructor(private readonly listener: Listener, private readonly clock: Clock) {}

  /** Times only the results that arrive from `ms` (clock time) on; those before still count for everything else. */
  timeFrom(ms: number): void {
    this.#timedFrom = ms;
  }

  /** One message as the broker delivered it. Returns the listener's verdict. */
  offer(topic: string, payload: Uint8Array, opts: { retained?: boolean } = {}): ListenOutcome {
    const receivedAt = this.clock.now();
    const outcome = this.listener.accept(topic, payload, opts);
    if (outcome.status !== 'new') return outcome;
    const m = outcome.message;
    let t = this.#devices.get(m.device);
    if (!t) this.#devices.set(m.device, (t = new DeviceTally()));
    const body = record(m.body);
    const stream = t.stream(`${m.signedBy?.fingerprint ?? 'unsigned'}\n${m.session ?? ''}`);
    stream.seqs.add(m.seq);
    if (m.kind === 'status' && body?.state === 'online' && Number.isSafeInteger(body.willSeq)) stream.reserved.add(body.willSeq as number);
    if (m.kind === 'results') {
      stream.results.add(m.seq);
      t.results++;
      if (receivedAt >= this.#timedFrom) {
        const ms = Math.max(0, receivedAt - m.ts);
        t.latency.record(ms);
        this.#fleetLatency.record(ms);
      }
      t.firstTs = Math.min(t.firstTs, m.ts);
      t.lastTs = Math.max(t.lastTs, m.ts);
      if (typeof body?.correct === 'boolean') { t.judged++; if (body.correct) t.correct++; }
      const e = num(body?.energyJ);
      if (e !== undefined) { t.energyJ += e; t.energyCounted++; }
      if (body?.backend === 'digital-fallback') t.fallbacks++;
    } else if (m.kind === 'telemetry') {
      if (m.ts >= t.telemetryTs) {
        t.telemetryTs = m.ts;
        const power = record(body?.power);
        const battery = num(power?.batteryPct);
        if (battery !== undefined) t.battery = battery;
        const breakdown = record(record(power?.energy)?.breakdownJ);
        if (breakdown) t.breakdown = Object.fromEntries(Object.keys(ZERO_BREAKDOWN).map((k) => [k, num(breakdown[k]) ?? 0])) as unknown as EnergyBreakdown;
      }
    } else if (m.kind === 'events' && typeof body?.type === 'string' && GUARD_GOVERNOR_EVENTS.has(body.type)) {
      t.events++;
    }
    return outcome;
  }

  summary(extra: { loadGeneratorCpuShare?: number } = {}): FleetMetrics {
    const counts = this.listener.summary();
    const devices: Record<string, DeviceFigures> = {};
    for (const [name, t] of [...this.#devices].sort(([a], [b]) => a.localeCompare(b))) {
      const c = counts.devices[name];
      devices[name] = figures(t, t.latency.summary(), c?.gaps ?? 0, c?.duplicates ?? 0);
    }
    return {
      devices, fleet: figures(group(this.#devices.values()), this.#fleetLatency.summary(), counts.gaps, counts.duplicates),
      rejected: Object.values(counts.rejected).reduce((a, b) => a + b, 0),
      ...(extra.loadGeneratorCpuShare !== undefined ? { loadGeneratorCpuShare: extra.loadGeneratorCpuShare } : {}),
    };
  }

  /** What this consumer saw, to be merged with the other consumers of its shared subscription (mergePartials). */
  partial(extra: { cpuShare?: number } = {}): CollectorPartial {
    const counts = this.listener.summary();
    return {
      kind: 'edgerun-fleet-partial',
      devices: Object.fromEntries([...this.#devices].map(([name, t]) => [name, t.toPartial(counts.devices[name]?.duplicates ?? 0)])),
      rejected: Object.values(counts.rejected).reduce((a, b) => a + b, 0),
      ...(extra.cpuShare !== undefined ? { cpuShare: extra.cpuShare } : {}),
    };
  }
}

/** The group's tally: counts added, the battery of the device that runs out first, breakdowns added. */
function group(tallies: Iterable<DeviceTally>): DeviceTally {
  const all = new DeviceTally();
  for (const t of tallies) {
    all.absorb(t);
    if (t.breakdown) all.breakdown = addBreakdown(all.breakdown ?? ZERO_BREAKDOWN, t.breakdown);
    if (t.battery !== undefined) all.battery = Math.min(all.battery ?? Infinity, t.battery);
  }
  return all;
}

export interface MergedMetrics {
  metrics: FleetMetrics;
  /** Per named group of devices (e.g. an agent's share): its figures, over the devices that sent anything. */
  groups: Record<string, DeviceFigures>;
}

/**
 * The figures of several consumers of one shared subscription, exact: counts add, latency
 * histograms add bucket by bucket, and lost and duplicated are judged over the union of the seqs
 * each consumer saw (a seq two consumers got is a duplicate; a seq between a stream's lowest and
 * highest that none got, and that no birth set aside for its will, is lost).
 */
export function mergePartials(partials: readonly CollectorPartial[], groups: Record<string, readonly string[]> = {}): MergedMetrics {
  const merged = new Map<string, { tally: DeviceTally; lost: number; duplicated: number }>();
  const names = [...new Set(partials.flatMap((p) => Object.keys(p.devices)))].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    const t = new DeviceTally();
    let duplicated = 0, crossResults = 0;
    for (const p of partials) {
      const d = p.devices[name];
      if (!d) continue;
      t.absorb({ ...d, firstTs: d.firstTs ?? Infinity, lastTs: d.lastTs ?? -Infinity });
      t.latency.add(d.latency);
      duplicated += d.duplicated;
      if (d.telemetryTs !== undefined && d.telemetryTs >= t.telemetryTs) {
        t.telemetryTs = d.telemetryTs;
        if (d.breakdownJ) t.breakdown = d.breakdownJ;
        if (d.batteryPercent !== undefined) t.battery = d.batteryPercent;
      }
      for (const [key, s] of Object.entries(d.streams)) {
        const into = t.stream(key);
        duplicated += into.seqs.addAll(SeqRanges.from(s.seqs));
        crossResults += into.results.addAll(SeqRanges.from(s.results));
        for (const r of s.reserved) into.reserved.add(r);
      }
    }
    // A result two consumers got is counted once (its latency stays in both histograms: rare, a resend after a reconnect).
    t.results -= crossResults;
    let lost = 0;
    for (const { seqs, reserved } of t.streams.values()) {
      if (seqs.lowest === undefined) continue;
      const set = [...reserved].filter((r) => r >= seqs.lowest! && r <= seqs.highest! && !seqs.has(r)).length;
      lost += seqs.highest! - seqs.lowest + 1 - seqs.size - set;
    }
    merged.set(name, { tally: t, lost, duplicated });
  }
  const figuresOf = (members: string[]): DeviceFigures => {
    const latency = new LatencyRecorder();
    let lost = 0, duplicated = 0;
    for (const m of members) {
      const d = merged.get(m)!;
      latency.add(d.tally.latency.encode());
      lost += d.lost;
      duplicated += d.duplicated;
    }
    return figures(group(members.map((m) => merged.get(m)!.tally)), latency.summary(), lost, duplicated);
  };
  const devices = Object.fromEntries(names.map((n) => {
    const d = merged.get(n)!;
    return [n, figures(d.tally, d.tally.latency.summary(), d.lost, d.duplicated)];
  }));
  const shares = partials.map((p) => p.cpuShare).filter((x): x is number => x !== undefined);
  return {
    metrics: {
      devices, fleet: figuresOf(names), rejected: partials.reduce((a, p) => a + p.rejected, 0),
      ...(shares.length ? { loadGeneratorCpuShare: Math.max(...shares) } : {}),
    },
    groups: Object.fromEntries(Object.entries(groups).map(([g, members]) => [g, figuresOf(members.filter((m) => merged.has(m)))])),
  };
}

/** The fleet row's battery is the lowest device's: the one that runs out first. */
function figures(t: DeviceTally, latency: LatencySummary, lost: number, duplicated: number): DeviceFigures {
  const spanS = (t.lastTs - t.firstTs) / 1000;
  return {
    results: t.results, latency,
    resultsPerSecond: spanS > 0 ? (t.results - 1) / spanS : 0,
    ...(t.judged ? { accuracy: t.correct / t.judged } : {}),
    ...(t.energyCounted ? { energyPerInferenceJ: t.energyJ / t.energyCounted } : {}),
    ...(t.breakdown ? { energyBreakdownJ: t.breakdown } : {}),
    ...(t.energyCounted && spanS > 0 ? { averagePowerW: t.energyJ / spanS } : {}),
    ...(t.battery !== undefined ? { batteryPercent: t.battery } : {}),
    fallbacks: t.fallbacks, events: t.events, lost, duplicated,
  };
}
