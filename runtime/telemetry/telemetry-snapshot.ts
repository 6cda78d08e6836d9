/**
 * The body of the periodic `telemetry` message (topics.ts): plain data built from the runtime's
 * objects — the scheduler's snapshot (queues, wait/service percentiles, completed/dropped/expired,
 * backend lanes and fallbacks, per-model placement, attached guards), the power governor's status,
 * the energy ledger (energy per inference and its breakdown), the power meter (measured watts,
 * battery, temperature) and the device's age. Everything is optional except the scheduler, so a
 * device without a governor or a sensor still reports its queues.
 *
 *   reporter.publish('telemetry', telemetrySnapshot({ scheduler: s.snapshot(), ledger, governor, uptimeMs }));
 */
import type { SchedulerSnapshot } from '../scheduler/scheduler.js';
import type { LatencySummary } from '../latency.js';
import type { LaneSnapshot, StreamSnapshot } from '../scheduler/metrics.js';
import type { EnergyLedger, EnergySnapshot } from '../power/ledger.js';
import type { GovernorStatus } from '../power/governor.js';
import type { PowerMeter } from '../power/power-meter.js';

export interface TelemetryInputs {
  scheduler: SchedulerSnapshot;
  /** Milliseconds since the process started serving. */
  uptimeMs: number;
  /** Seconds since the analog device was programmed (drift age), when there is one. */
  deviceAgeS?: number;
  governor?: GovernorStatus;
  ledger?: EnergyLedger;
  meter?: PowerMeter;
  /** Board power with no inference (W): measured vs modelled compares against modelled + idle. */
  idleW?: number;
  /** Counters of the reporter / outbox (A's Reporter.counters()), passed through as they are. */
  reporter?: Record<string, unknown>;
  /** Streams the daemon holds back at their source (a command or the governor), besides those the scheduler pauses. */
  paused?: readonly string[];
}

export interface LatencyFigures {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A stream's counters as the scheduler keeps them, with latency as rounded percentiles. */
export type StreamTelemetry = Pick<StreamSnapshot, 'model' | 'depth' | 'maxDepth' | 'capacity' | 'submitted' | 'completed' | 'failed' | 'dropped' | 'expired' | 'late' | 'fallbacks'> & {
  paused?: boolean;
  waitMs: LatencyFigures;
  serviceMs: LatencyFigures;
};

export type BackendTelemetry = Pick<LaneSnapshot, 'running' | 'queued' | 'completed' | 'failed' | 'fallbacks'> & {
  waitMs: LatencyFigures;
  serviceMs: LatencyFigures;
};

export interface PowerTelemetry {
  /** Modelled inference power over the ledger's window. */
  modelledW?: number;
  /** Measured board power over the meter's window, when a sensor feeds it. */
  measuredW?: number;
  batteryPct?: number;
  celsius?: number;
  sensor?: string;
  energy?: {
    inferences: number;
    perInferenceJ: number;
    totalJ: number;
    breakdownJ: EnergySnapshot['breakdownJ'];
    byModel: EnergySnapshot['byModel'];
    measuredToModelled?: number;
  };
  governor?: Pick<GovernorStatus, 'enabled' | 'reason' | 'allowedW' | 'plannedW' | 'adcBits' | 'placements' | 'rates' | 'shed' | 'paused' | 'steps' | 'decisions'>;
}

export interface TelemetryBody {
  uptimeS: number;
  deviceAgeS?: number;
  /** Requests queued over every stream. */
  queueDepth: number;
  completed: number;
  dropped: number;
  expired: number;
  failed: number;
  /** Completed on the digital fallback path, over every stream. */
  fallbacks: number;
  streams: Record<string, StreamTelemetry>;
  backends: Record<string, BackendTelemetry>;
  models: Record<string, Record<string, unknown>>;
  guards: Record<string, unknown>;
  power: PowerTelemetry;
  reporter?: Record<string, unknown>;
}

const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
const lat = (s: LatencySummary): LatencyFigures => ({ count: s.count, p50Ms: round(s.p50Ms), p90Ms: round(s.p90Ms), p99Ms: round(s.p99Ms), maxMs: round(s.maxMs) });
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
/** JSON has no Infinity: an unlimited allowance is reported as null. */
const finiteOrNull = (x: number): number => (Number.isFinite(x) ? round(x, 6) : (null as unknown as number));

export function telemetrySnapshot(i: TelemetryInputs): TelemetryBody {
  const paused = new Set(i.paused ?? []);
  const streams: Record<string, StreamTelemetry> = {};
  let queueDepth = 0, completed = 0, dropped = 0, expired = 0, failed = 0, fallbacks = 0;
  for (const [name, s] of Object.entries(i.scheduler.streams)) {
    streams[name] = {
      model: s.model, depth: s.depth, maxDepth: s.maxDepth, capacity: s.capacity,
      submitted: s.submitted, completed: s.completed, failed: s.failed, dropped: s.dropped, expired: s.expired, late: s.late,
      fallbacks: s.fallbacks, ...(s.paused || paused.has(name) ? { paused: true } : {}),
      waitMs: lat(s.wait), serviceMs: lat(s.service),
    };
    queueDepth += s.depth; completed += s.completed; dropped += s.dropped; expired += s.expired; failed += s.failed;
    fallbacks += sum(s.fallbacks);
  }
  const backends: Record<string, BackendTelemetry> = {};
  for (const [name, b] of Object.entries(i.scheduler.backends)) {
    backends[name] = { running: b.running, queued: b.queued, completed: b.completed, failed: b.failed, fallbacks: b.fallbacks, waitMs: lat(b.wait), serviceMs: lat(b.service) };
  }

  const power: PowerTelemetry = {};
  if (i.ledger) {
    const e = i.ledger.snapshot(i.meter, i.idleW);
    power.modelledW = round(e.windowW, 6);
    power.energy = {
      inferences: e.inferences, perInferenceJ: e.perInferenceJ, totalJ: e.modelledJ,
      breakdownJ: e.breakdownJ, byModel: e.byModel,
      ...(e.measured?.ratio !== undefined ? { measuredToModelled: round(e.measured.ratio) } : {}),
    };
    if (e.measured) power.measuredW = round(e.measured.windowW, 6);
  }
  const latest = i.meter?.latest;
  if (latest?.batteryPct !== undefined) power.batteryPct = latest.batteryPct;
  if (latest?.celsius !== undefined) power.celsius = latest.celsius;
  if (i.meter?.sensor) power.sensor = i.meter.sensor;
  if (i.governor) {
    const g = i.governor;
    power.governor = {
      enabled: g.enabled, ...(g.reason ? { reason: g.reason } : {}), allowedW: finiteOrNull(g.allowedW), plannedW: round(g.plannedW, 6),
      ...(g.adcBits !== undefined ? { adcBits: g.adcBits } : {}),
      placements: g.placements, rates: g.rates, shed: g.shed, paused: g.paused, steps: g.steps, decisions: g.decisions,
    };
  }

  return {
    uptimeS: round(i.uptimeMs / 1000),
    ...(i.deviceAgeS !== undefined ? { deviceAgeS: round(i.deviceAgeS) } : {}),
    queueDepth, completed, dropped, expired, failed, fallbacks,
    streams, backends, models: i.scheduler.models, guards: i.scheduler.guards, power,
    ...(i.reporter ? { reporter: i.reporter } : {}),
  };
}
