/** What the scheduler takes and gives back. */
import type { Feeds } from '../model/feeds.js';
import type { IOSpec } from '../model/load.js';
import type { TensorData } from '../model/tensor.js';
import type { PreparedModel } from '../backend.js';

/** Which path produced a result. */
export type ServedBy = 'analog' | 'digital' | 'digital-fallback';

/** One inference as a placed model ran it. */
export interface PlacedRun {
  outputs: Record<string, TensorData>;
  backend: ServedBy;
  /** Set when backend is 'digital-fallback': why the accelerator was not used. */
  fallbackReason?: string;
  /** Bundle version of the model that ran (runtime/deploy/versioned-model.ts); absent for the model the daemon was started with. */
  modelVersion?: string;
}

/**
 * A model bound to where it runs (runtime/scheduler/placement.ts). `lane` names the backend whose
 * concurrency limit its requests count against.
 */
export interface PlacedModel {
  readonly id: string;
  readonly lane: string;
  readonly inputs: readonly IOSpec[];
  readonly outputs: readonly IOSpec[];
  run(feeds: Feeds): Promise<PlacedRun>;
  /**
   * Set when every run goes to one prepared model and is reported as `direct.backend`: the
   * scheduler then calls it without the PlacedRun wrapper (one promise hop less per request).
   */
  readonly direct?: { readonly prepared: PreparedModel; readonly backend: ServedBy };
  /** State for telemetry (placement, fallback state, counters). */
  snapshot(): Record<string, unknown>;
  dispose(): Promise<void>;
}

export interface InferenceResult extends PlacedRun {
  /** Time queued, from submission until it started running. */
  waitMs: number;
  /** Time running (for a micro-batch: the whole batch). */
  serviceMs: number;
  /** Requests run together in this request's micro-batch (1 when not batched). */
  batchSize: number;
}

/**
 * What a full stream does with one more request: `drop-oldest` sheds the oldest queued request (the
 * latest camera frame wins), `drop-newest` refuses the new one, `block` makes submit() wait for
 * room (backpressure: nothing is lost).
 */
export type ShedPolicy = 'drop-oldest' | 'drop-newest' | 'block';

export interface StreamOptions {
  /** Id of a model added with Scheduler.addModel. */
  model: string;
  /** Higher runs first; strict priority between streams of one backend. */
  priority?: number;
  /** Most requests queued (not counting running ones). */
  capacity?: number;
  policy?: ShedPolicy;
  /** Default time budget of a request, from submission (ms); later it is dropped as expired. */
  deadlineMs?: number;
  /** Micro-batching: run up to maxSize queued requests as one batch along axis 0, waiting at most maxWaitMs for it to fill. */
  batch?: { maxSize: number; maxWaitMs: number };
}

export interface SubmitOptions {
  /** Time budget from submission (ms), overriding the stream's. */
  deadlineMs?: number;
}

/** An admitted request: its result settles when it ran, or rejects with a RequestDroppedError. */
export interface Ticket {
  readonly id: number;
  readonly result: Promise<InferenceResult>;
}
