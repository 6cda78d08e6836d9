/** Counters and latency percentiles per stream and per backend lane, as telemetry publishes them. */
import { LatencyRecorder, type LatencySummary } from '../latency.js';

export class ReasonCounts {
  readonly #counts = new Map<string, number>();
  add(reason: string, n = 1): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + n);
  }
  get total(): number {
    let t = 0;
    for (const v of this.#counts.values()) t += v;
    return t;
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}

export interface StreamSnapshot {
  model: string;
  priority: number;
  /** Paused by a command: requests queue (and shed) but do not run. */
  paused: boolean;
  policy: string;
  capacity: number;
  depth: number;
  maxDepth: number;
  /** Requests blocked outside a full queue (block policy). */
  blocked: number;
  submitted: number;
  completed: number;
  failed: number;
  /** Shed by the stream's policy. */
  dropped: number;
  /** Deadline passed while queued: not run. */
  expired: number;
  /** Completed, but after their deadline. */
  late: number;
  /** Completed on the digital path because the accelerator could not serve them, by reason. */
  fallbacks: Record<string, number>;
  batches: number;
  wait: LatencySummary;
  service: LatencySummary;
}

export class StreamMetrics {
  submitted = 0;
  completed = 0;
  failed = 0;
  dropped = 0;
  expired = 0;
  late = 0;
  batches = 0;
  readonly fallbacks = new ReasonCounts();
  readonly wait = new LatencyRecorder();
  readonly service = new LatencyRecorder();
}

export interface LaneSnapshot {
  concurrency: number;
  running: number;
  /** Jobs waiting for a free slot (queued requests of this lane's streams). */
  queued: number;
  completed: number;
  failed: number;
  fallbacks: Record<string, number>;
  /** Per job (a micro-batch is one job): how long its oldest request waited for this backend. */
  wait: LatencySummary;
  /** Per job. */
  service: LatencySummary;
}

export class LaneMetrics {
  completed = 0;
  failed = 0;
  readonly fallbacks = new ReasonCounts();
  readonly wait = new LatencyRecorder();
  readonly service = new LatencyRecorder();
}
