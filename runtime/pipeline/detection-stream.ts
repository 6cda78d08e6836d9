/**
 * A camera's detection stream on the device's pipeline (DeepStream's source → infer → tracker →
 * msgbroker, Frigate's events):
 *
 *   frame source → admit (paused? governed rate?) → frame check and resampling → scheduler
 *   (capacity 1, drop-oldest: the latest frame wins) → detector on the device's placement →
 *   grid decoding, score threshold, class-wise NMS → IoU tracker → `events` (Frigate shape),
 *   snapshots of a track's best frame, per-label counts, rate-limited per-frame `detections`
 *
 * Bad frames (wrong size, unreadable files) and source failures become `events` of type
 * `frame-error` / `source-error`; a source that delivers nothing for `stallMs` gives one
 * `source-stalled` event (and `source-resumed` when frames come back). The stream goes on.
 */
import { DetectionEvents, type Zones } from '../detect/events.js';
import { decodeGrid, type GridHead } from '../detect/grid-head.js';
import { nonMaxSuppression } from '../detect/nms.js';
import { snapshotJpeg } from '../detect/snapshot.js';
import { IouTracker, type TrackChange, type TrackerOptions } from '../detect/tracker.js';
import { RequestDroppedError } from '../scheduler/errors.js';
import type { InferenceResult } from '../scheduler/types.js';
import { frameProblem, toModelInput, type Frame, type FrameSink } from './frame.js';
import type { Publisher, StreamPipeline } from './stream-pipeline.js';

/** Retained per-camera state outside the envelope contract: raw JPEG snapshots and plain counts. */
export interface CameraState {
  snapshot(label: string, jpeg: Uint8Array): Promise<void>;
  count(label: string, count: number): Promise<void>;
}

export interface DetectionStreamOptions {
  pipeline: StreamPipeline;
  /** The pipeline stream (and camera name) the frames go to. */
  stream: string;
  head: GridHead;
  publisher: Publisher;
  state: CameraState;
  scoreThreshold: number;
  nmsIou: number;
  tracker?: Partial<TrackerOptions>;
  zones?: Zones;
  /** Per-frame `detections` at most this often; 0 = none. */
  detectionsIntervalMs: number;
  snapshots: boolean;
  /** No frame for this long is reported as a stalled source. */
  stallMs?: number;
  /** Called per processed frame (benches, tests). */
  onFrame?: (timing: FrameTiming) => void;
}

export interface FrameTiming {
  frame: Frame;
  /** Frame check and resampling to the model input. */
  decodeMs: number;
  /** Queue wait and inference (the scheduler's wait + service). */
  inferenceMs: number;
  /** Grid decoding, NMS, tracking, events and snapshots made. */
  postMs: number;
  /** Until the reporter accepted every message of the frame (journaled). */
  publishMs: number;
  /** Frame arrival to published. */
  totalMs: number;
}

export interface DetectionCounters {
  frames: number;
  /** Not admitted: paused, shed by the governor, or ahead of the rate. */
  skipped: number;
  /** Replaced in the queue by a newer frame. */
  superseded: number;
  badFrames: number;
  processed: number;
  sourceErrors: number;
}

export class DetectionStream implements FrameSink {
  readonly #o: DetectionStreamOptions;
  readonly #tracker: IouTracker;
  readonly #events: DetectionEvents;
  readonly #counts = new Map<string, number>();
  /** Live tracks with a published snapshot. */
  readonly #snapshotted = new Set<string>();
  /** Results handled one after another, in frame order. */
  #chain: Promise<void> = Promise.resolve();
  #lastFrameT = -Infinity;
  #lastDetectionsMs = -Infinity;
  #lastArrival = performance.now();
  #stalled = false;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #endResolve!: () => void;
  /** Resolves when the source ended and every track was closed. */
  readonly ended: Promise<void>;
  readonly counters: DetectionCounters = { frames: 0, skipped: 0, superseded: 0, badFrames: 0, processed: 0, sourceErrors: 0 };

  constructor(o: DetectionStreamOptions) {
    this.#o = o;
    this.#tracker = new IouTracker(o.stream, o.tracker);
    this.#events = new DetectionEvents(o.stream, o.zones);
    this.ended = new Promise((r) => { this.#endResolve = r; });
  }

  /** Publishes the zero counts (retained state starts known) and watches for a stalled source. */
  async start(): Promise<void> {
    for (const label of this.#o.head.labels) await this.#setCount(label, 0);
    const stallMs = this.#o.stallMs ?? 5000;
    this.#watchdog = setInterval(() => {
      if (this.#stalled || performance.now() - this.#lastArrival < stallMs) return;
      this.#stalled = true;
      this.#o.pipeline.event({ type: 'source-stalled', camera: this.#o.stream, afterMs: Math.round(performance.now() - this.#lastArrival) });
    }, Math.max(50, stallMs / 4));
    this.#watchdog.unref?.();
  }

  frame(frame: Frame): void {
    const arrived = performance.now();
    this.#lastArrival = arrived;
    if (this.#stalled) {
      this.#stalled = false;
      this.#o.pipeline.event({ type: 'source-resumed', camera: this.#o.stream });
    }
    this.counters.frames++;
    if (!this.#o.pipeline.admit(this.#o.stream)) {
      this.counters.skipped++;
      return;
    }
    const problem = frameProblem(frame);
    if (problem) {
      this.counters.badFrames++;
      this.#o.pipeline.event({ type: 'frame-error', camera: this.#o.stream, error: problem });
      return;
    }
    const input = toModelInput(frame, this.#o.head.input);
    const decodeMs = performance.now() - arrived;
    // Settled at once (a superseded request rejects while earlier frames are still being handled),
    // then handled in arrival order, after every earlier frame's result.
    const outcome = this.#o.pipeline.infer(this.#o.stream, { input: { type: 'float32', data: input, dims: [1, ...this.#o.head.input] } })
      .then((result) => ({ result }), (error: Error) => ({ error }));
    this.#chain = this.#chain.then(async () => {
      const o = await outcome;
      if ('result' in o) return this.#handle(frame, o.result, arrived, decodeMs);
      if (o.error instanceof RequestDroppedError && o.error.reason === 'shed') this.counters.superseded++;
      else if (!this.#o.pipeline.stopping) this.#o.pipeline.event({ type: 'inference-failed', stream: this.#o.stream, error: o.error.message });
    }).catch((e: Error) => this.#o.pipeline.event({ type: 'detection-failed', camera: this.#o.stream, error: e.message }));
  }

  error(error: Error): void {
    this.counters.sourceErrors++;
    this.#o.pipeline.event({ type: 'source-error', camera: this.#o.stream, error: error.message });
  }

  end(): void {
    void this.close().then(() => this.#endResolve());
  }

  /** Waits for the frames in flight, then ends every live track. */
  async close(): Promise<void> {
    clearInterval(this.#watchdog);
    await this.#chain;
    await this.#publishChanges(this.#tracker.flush(), undefined);
  }

  async #handle(frame: Frame, r: InferenceResult, arrived: number, decodeMs: number): Promise<void> {
    // A frame older than one already handled (results can finish out of order under concurrency) would rewind the tracker.
    if (frame.t < this.#lastFrameT) return;
    this.#lastFrameT = frame.t;
    const energyJ = this.#o.pipeline.account(this.#o.stream, r);
    const postStart = performance.now();
    const output = Object.values(r.outputs)[0];
    if (!output) throw new Error('the detector returned no output');
    const [inH, inW] = [this.#o.head.input[1], this.#o.head.input[2]];
    const raw = decodeGrid(this.#o.head, { data: output.data as ArrayLike<number>, dims: output.dims }, { scoreThreshold: this.#o.scoreThreshold, scale: [frame.width / inW, frame.height / inH] });
    const detections = nonMaxSuppression(raw, this.#o.nmsIou);
    const changes = this.#tracker.update(detections, frame.t);
    const publishStart = performance.now();
    await this.#publishChanges(changes, frame);
    if (this.#o.detectionsIntervalMs > 0 && publishStart - this.#lastDetectionsMs >= this.#o.detectionsIntervalMs) {
      this.#lastDetectionsMs = publishStart;
      await this.#o.publisher.publish('detections', {
        camera: this.#o.stream, frame_time: frame.t / 1000, backend: r.backend, latencyMs: round(r.waitMs + r.serviceMs), ...(energyJ !== undefined ? { energyJ } : {}),
        detections: detections.map((d) => ({ label: d.label, score: round(d.score), box: d.box.map((v) => Math.round(v)) })),
      });
    }
    const done = performance.now();
    this.counters.processed++;
    void this.#o.pipeline.governor.tick().catch(() => undefined);
    this.#o.onFrame?.({ frame, decodeMs, inferenceMs: r.waitMs + r.serviceMs, postMs: publishStart - postStart, publishMs: done - publishStart, totalMs: done - arrived });
  }

  /** Events (with a snapshot when a track's best score rose), then the counts that changed. */
  async #publishChanges(changes: TrackChange[], frame: Frame | undefined): Promise<void> {
    for (const change of changes) {
      const id = change.after.id;
      if (this.#o.snapshots && frame !== undefined && change.improved && change.type !== 'end') {
        await this.#o.state.snapshot(change.after.label, snapshotJpeg(frame, change.after.box));
        this.#snapshotted.add(id);
      }
      await this.#o.publisher.publish('events', this.#events.of(change, this.#snapshotted.has(id)));
      if (change.type === 'end') this.#snapshotted.delete(id);
    }
    if (changes.length === 0) return;
    const now = new Map<string, number>();
    for (const t of this.#tracker.tracks) if (t.announced) now.set(t.label, (now.get(t.label) ?? 0) + 1);
    for (const label of this.#o.head.labels) if ((now.get(label) ?? 0) !== this.#counts.get(label)) await this.#setCount(label, now.get(label) ?? 0);
  }

  async #setCount(label: string, n: number): Promise<void> {
    this.#counts.set(label, n);
    await this.#o.state.count(label, n);
  }
}

const round = (v: number): number => Math.round(v * 1e4) / 1e4;
