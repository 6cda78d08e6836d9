/**
 * Fleet figures from what the devices publish, nothing else: a consumer hands every MQTT message
 * it receives to `offer`, the telemetry listener (runtime/telemetry/listener.ts) checks signatures
 * and de-duplicates, and this collector sums up the accepted ones — per device and fleet-wide:
 * end-to-end latency (device timestamp → received), throughput, accuracy, energy per inference and
 * its breakdown, average power, battery left, fallbacks, guard and governor events, messages lost
 * (sequence gaps) and duplicated.
 */
import { LatencyRecorder, type LatencySummary } from '../latency.js';
import { addBreakdown, ZERO_BREAKDOWN, type EnergyBreakdown } from '../power/energy-model.js';
import type { Clock } from '../ports.js';
import type { ListenOutcome, Listener } from '../telemetry/listener.js';

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
  breakdown?: EnergyBreakdown;
  battery?: number;
}

const record = (x: unknown): Record<string, unknown> | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? x as Record<string, unknown> : undefined);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

export class FleetMetricsCollector {
  readonly #devices = new Map<string, DeviceTally>();
  readonly #fleetLatency = new LatencyRecorder();

  /** `clock` stamps arrivals; it must share its epoch with the devices' timestamps (wall time across machines). */
  constructor(private readonly listener: Listener, private readonly clock: Clock) {}

  /** One message as the broker delivered it. Returns the listener's verdict. */
  offer(topic: string, payload: Uint8Array, opts: { retained?: boolean } = {}): ListenOutcome {
    const receivedAt = this.clock.now();
    const outcome = this.listener.accept(topic, payload, opts);
    if (outcome.status !== 'new') return outcome;
    const m = outcome.message;
    let t = this.#devices.get(m.device);
    if (!t) this.#devices.set(m.device, (t = new DeviceTally()));
    const body = record(m.body);
    if (m.kind === 'results') {
      t.results++;
      const ms = Math.max(0, receivedAt - m.ts);
      t.latency.record(ms);
      this.#fleetLatency.record(ms);
      t.firstTs = Math.min(t.firstTs, m.ts);
      t.lastTs = Math.max(t.lastTs, m.ts);
      if (typeof body?.correct === 'boolean') { t.judged++; if (body.correct) t.correct++; }
      const e = num(body?.energyJ);
      if (e !== undefined) { t.energyJ += e; t.energyCounted++; }
      if (body?.backend === 'digital-fallback') t.fallbacks++;
    } else if (m.kind === 'telemetry') {
      const power = record(body?.power);
      const battery = num(power?.batteryPct);
      if (battery !== undefined) t.battery = battery;
      const breakdown = record(record(power?.energy)?.breakdownJ);
      if (breakdown) t.breakdown = Object.fromEntries(Object.keys(ZERO_BREAKDOWN).map((k) => [k, num(breakdown[k]) ?? 0])) as unknown as EnergyBreakdown;
    } else if (m.kind === 'events' && typeof body?.type === 'string' && GUARD_GOVERNOR_EVENTS.has(body.type)) {
      t.events++;
    }
    return outcome;
  }

  summary(extra: { loadGeneratorCpuShare?: number } = {}): FleetMetrics {
    const counts = this.listener.summary();
    const devices: Record<string, DeviceFigures> = {};
    const all = new DeviceTally();
    for (const [name, t] of [...this.#devices].sort(([a], [b]) => a.localeCompare(b))) {
      const c = counts.devices[name];
      devices[name] = figures(t, t.latency.summary(), c?.gaps ?? 0, c?.duplicates ?? 0);
      all.results += t.results; all.judged += t.judged; all.correct += t.correct; all.energyJ += t.energyJ; all.energyCounted += t.energyCounted;
      all.fallbacks += t.fallbacks; all.events += t.events;
      all.firstTs = Math.min(all.firstTs, t.firstTs); all.lastTs = Math.max(all.lastTs, t.lastTs);
      if (t.breakdown) all.breakdown = addBreakdown(all.breakdown ?? ZERO_BREAKDOWN, t.breakdown);
      if (t.battery !== undefined) all.battery = Math.min(all.battery ?? Infinity, t.battery);
    }
    return {
      devices, fleet: figures(all, this.#fleetLatency.summary(), counts.gaps, counts.duplicates),
      rejected: Object.values(counts.rejected).reduce((a, b) => a + b, 0),
      ...(extra.loadGeneratorCpuShare !== undefined ? { loadGeneratorCpuShare: extra.loadGeneratorCpuShare } : {}),
    };
  }
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
