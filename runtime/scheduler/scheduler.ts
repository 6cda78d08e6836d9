/**
 * The request scheduler. Each stream (a camera, a sensor, ...) has a bounded queue with a shedding
 * policy, a priority and optional deadlines and micro-batching; each backend has a lane: a fastq
 * queue whose concurrency is the number of jobs that backend may run at once (accelerator tiles
 * are shared; CPU work must leave the event loop room). Lane workers bind late: a lane holds one
 * token per admitted request, and a worker picks the best request *when a slot frees up* — highest
 * priority first, expired ones dropped unrun — so priorities and freshness hold under load.
 */
import fastq from 'fastq';
import type { Feeds } from '../model/feeds.js';
import { validateFeeds } from '../model/feeds.js';
import { monotonicClock, type Clock } from '../ports.js';
import { RequestDroppedError, type DropReason } from './errors.js';
import { LaneMetrics, StreamMetrics, type LaneSnapshot, type StreamSnapshot } from './metrics.js';
import { concatFeeds, splitOutputs, unbatchable } from './micro-batch.js';
import { StreamQueue, type Queued } from './stream-queue.js';
import type { InferenceResult, PlacedModel, PlacedRun, StreamOptions, SubmitOptions, Ticket } from './types.js';

export interface SchedulerOptions {
  /** Time for deadlines and latency figures (tests pass a manual clock). */
  clock?: Clock;
  /** Jobs each backend lane may run at once, by lane name (default 1 each). */
  concurrency?: Record<string, number>;
  /** A modelled service time (runtime/service-time.ts): a job holds its lane slot at least this many ms, drawn per job. */
  serviceTimeMs?: () => number;
}

interface Request extends Queued {
  readonly id: number;
  readonly feeds: Feeds;
  /** Leading dim of the first input (rows this request adds to a micro-batch). */
  readonly rows: number;
  settled: boolean;
  result: Promise<InferenceResult>;
  /** For a request parked by `block`: resolves when it entered the queue. */
  admitted: Promise<void> | undefined;
  resolve(r: InferenceResult): void;
  reject(e: Error): void;
}

interface Stream {
  readonly name: string;
  readonly order: number;
  readonly priority: number;
  readonly options: StreamOptions;
  readonly queue: StreamQueue<Request>;
  readonly metrics: StreamMetrics;
  readonly model: PlacedModel;
  /** Name of the model's first input: its leading dim is a request's micro-batch rows. */
  readonly firstInput: string;
  /** How errors name this stream. */
  readonly label: string;
  readonly lane: Lane;
  batchTimer?: ReturnType<typeof setTimeout>;
  /** The batch window of the oldest request has run out: run what is there. */
  batchDue: boolean;
  /** Paused (a command): requests are still admitted and shed by the stream's policy, none runs. */
  paused: boolean;
}

interface Lane {
  readonly name: string;
  readonly queue: fastq.queue<null, void>;
  readonly streams: Stream[];
  readonly metrics: LaneMetrics;
  running: number;
  /**
   * With a modelled service time: when each of the lane's slots is free on the modelled device's own
   * schedule. A job starts at its arrival or when a slot frees, whichever is later, and ends a draw
   * after; a timer that fires late delays that job's result, not the jobs after it (the chip's
   * timing is not the host's timers').
   */
  readonly freeAt: number[];
}

interface Snapshotting { snapshot(): unknown }

const ignore = (): void => undefined;

/** A Promise executor that closes over nothing: every request makes a promise, none a closure. */
const captured: { resolve: (r: InferenceResult) => void; reject: (e: Error) => void } = { resolve: () => undefined, reject: () => undefined };
function capture(resolve: (r: InferenceResult) => void, reject: (e: Error) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

export interface SchedulerSnapshot {
  streams: Record<string, StreamSnapshot>;
  backends: Record<string, LaneSnapshot>;
  models: Record<string, Record<string, unknown>>;
  guards: Record<string, unknown>;
}

export class Scheduler {
  readonly #clock: Clock;
  readonly #concurrency: Record<string, number>;
  readonly #serviceTimeMs: (() => number) | undefined;
  readonly #models = new Map<string, PlacedModel>();
  readonly #streams = new Map<string, Stream>();
  readonly #lanes = new Map<string, Lane>();
  readonly #guards = new Map<string, Snapshotting>();
  #nextId = 1;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: SchedulerOptions = {}) {
    this.#clock = options.clock ?? monotonicClock;
    this.#concurrency = options.concurrency ?? {};
    this.#serviceTimeMs = options.serviceTimeMs;
  }

  addModel(model: PlacedModel): void {
    if (this.#models.has(model.id)) throw new Error(`model '${model.id}' is already added`);
    this.#models.set(model.id, model);
  }

  model(id: string): PlacedModel {
    const m = this.#models.get(id);
    if (!m) throw new Error(`unknown model '${id}'; added: ${[...this.#models.keys()].join(', ') || 'none'}`);
    return m;
  }

  /** Makes a guard's (or any component's) state part of snapshot().guards under `key`. */
  attachGuard(key: string, guard: Snapshotting): void {
    this.#guards.set(key, guard);
  }

  addStream(name: string, options: StreamOptions): void {
    if (this.#streams.has(name)) throw new Error(`stream '${name}' already exists`);
    const model = this.model(options.model);
    const batch = options.batch;
    if (batch && (!Number.isInteger(batch.maxSize) || batch.maxSize < 1 || !(batch.maxWaitMs >= 0))) {
      throw new Error(`stream '${name}': batch needs maxSize ≥ 1 and maxWaitMs ≥ 0`);
    }
    const capacity = options.capacity ?? 16;
    if (batch && batch.maxSize > capacity) throw new Error(`stream '${name}': a batch of ${batch.maxSize} never fits a queue of ${capacity}`);
    const stream: Stream = {
      name, order: this.#streams.size, priority: options.priority ?? 0, options, model, firstInput: model.inputs[0]?.name ?? '', label: `stream '${name}' (model ${model.id})`, lane: this.#lane(model.lane),
      queue: new StreamQueue<Request>(capacity, options.policy ?? 'drop-oldest'), metrics: new StreamMetrics(), batchDue: false, paused: false,
    };
    this.#streams.set(name, stream);
    stream.lane.streams.push(stream);
    stream.lane.streams.sort((a, b) => b.priority - a.priority || a.order - b.order);
  }

  /**
   * Admits a request to a stream. Resolves once it is queued — at once, or for a full `block`
   * stream when room frees up — with a ticket whose `result` settles when it has run, or rejects
   * with a RequestDroppedError (shed, expired, closed). Bad feeds reject here and change nothing.
   */
  submit(streamName: string, feeds: Feeds, options?: SubmitOptions): Promise<Ticket> {
    let a: Request;
    try {
      a = this.#admit(streamName, feeds, options);
    } catch (e) {
      return Promise.reject(e);
    }
    a.result.catch(ignore); // a caller that never looks at a dropped result must not crash the process
    const ticket: Ticket = { id: a.id, result: a.result };
    return a.admitted ? a.admitted.then(() => ticket) : Promise.resolve(ticket);
  }

  /** submit() and wait for the result (the same admission, without the ticket). */
  infer(streamName: string, feeds: Feeds, options?: SubmitOptions): Promise<InferenceResult> {
    let a: Request;
    try {
      a = this.#admit(streamName, feeds, options);
    } catch (e) {
      return Promise.reject(e);
    }
    return a.admitted ? a.admitted.then(() => a.result) : a.result;
  }

  /** Queues (or sheds, or parks) one request; kept free of awaits: this is every request's path. */
  #admit(streamName: string, feeds: Feeds, options: SubmitOptions | undefined): Request {
    const stream = this.#streams.get(streamName);
    if (!stream) throw new Error(`unknown stream '${streamName}'; streams: ${[...this.#streams.keys()].join(', ') || 'none'}`);
    if (this.#closed) throw new RequestDroppedError('closed', streamName, 'the scheduler is closed');
    validateFeeds(stream.model.inputs, feeds, stream.label);
    const now = this.#clock.now();
    const budget = options?.deadlineMs ?? stream.options.deadlineMs;
    const result = new Promise<InferenceResult>(capture);
    const request: Request = {
      id: this.#nextId++, feeds, rows: feeds[stream.firstInput]?.dims[0] ?? 1, submittedAt: now,
      deadline: budget === undefined ? Infinity : now + budget, settled: false, result, admitted: undefined, resolve: captured.resolve, reject: captured.reject,
    };
    stream.metrics.submitted++;
    const outcome = stream.queue.offer(request);
    switch (outcome.kind) {
      case 'queued': this.#enqueued(stream); break;
      case 'queued-shedding': this.#drop(stream, outcome.shed, 'shed', 'shed by drop-oldest: a newer request replaced it'); this.#enqueued(stream); break;
      case 'refused': this.#drop(stream, request, 'shed', `stream '${streamName}' is full (${stream.queue.capacity}) and drops the newest`); break;
      case 'waiting': request.admitted = outcome.admitted.then(() => { if (!request.settled) this.#enqueued(stream); }); break;
    }
    return request;
  }

  /**
   * Stops running a stream's requests. New requests are still admitted into its bounded queue and
   * shed by its policy (`block` makes producers wait); deadlines still expire them. Idempotent.
   */
  pauseStream(name: string): void {
    this.#stream(name).paused = true;
  }

  /** Runs a paused stream's requests again, starting with what queued meanwhile. Idempotent. */
  resumeStream(name: string): void {
    const s = this.#stream(name);
    if (!s.paused) return;
    s.paused = false;
    // Tokens for the queued requests were spent while paused: give the lane one per request again.
    const queued = s.queue.depth; // pushing may start a job at once, which takes from the queue
    for (let i = 0; i < queued; i++) s.lane.queue.push(null);
  }

  isPaused(name: string): boolean {
    return this.#stream(name).paused;
  }

  #stream(name: string): Stream {
    const s = this.#streams.get(name);
    if (!s) throw new Error(`unknown stream '${name}'; streams: ${[...this.#streams.keys()].join(', ') || 'none'}`);
    return s;
  }

  snapshot(): SchedulerSnapshot {
    const streams: Record<string, StreamSnapshot> = {};
    for (const s of this.#streams.values()) {
      const m = s.metrics;
      streams[s.name] = {
        model: s.model.id, priority: s.priority, paused: s.paused, policy: s.queue.policy, capacity: s.queue.capacity,
        depth: s.queue.depth, maxDepth: s.queue.maxDepth, blocked: s.queue.waiting,
        submitted: m.submitted, completed: m.completed, failed: m.failed, dropped: m.dropped, expired: m.expired, late: m.late,
        fallbacks: m.fallbacks.toJSON(), batches: m.batches, wait: m.wait.summary(), service: m.service.summary(),
      };
    }
    const backends: Record<string, LaneSnapshot> = {};
    for (const l of this.#lanes.values()) {
      backends[l.name] = {
        concurrency: l.queue.concurrency, running: l.running, queued: l.streams.reduce((a, s) => a + s.queue.depth, 0),
        completed: l.metrics.completed, failed: l.metrics.failed, fallbacks: l.metrics.fallbacks.toJSON(),
        wait: l.metrics.wait.summary(), service: l.metrics.service.summary(),
      };
    }
    const models = Object.fromEntries([...this.#models.values()].map((m) => [m.id, m.snapshot()]));
    const guards = Object.fromEntries([...this.#guards].map(([k, g]) => [k, g.snapshot()]));
    return { streams, backends, models, guards };
  }

  /** Resolves when no request is queued or running. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops what is queued (reported 'closed'), waits for running jobs, disposes nothing else. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#streams.values()) {
      clearTimeout(s.batchTimer);
      for (const r of s.queue.drain()) this.#drop(s, r, 'closed', 'the scheduler closed before this request ran');
    }
    await this.idle();
  }

  #lane(name: string): Lane {
    let lane = this.#lanes.get(name);
    if (lane) return lane;
    const concurrency = this.#concurrency[name] ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`backend '${name}': concurrency must be an integer ≥ 1, got ${concurrency}`);
    const created: Lane = { name, streams: [], metrics: new LaneMetrics(), running: 0, freeAt: new Array<number>(concurrency).fill(-Infinity), queue: fastq<unknown, null, void>((_t, done) => this.#work(created, done), concurrency) };
    this.#lanes.set(name, created);
    return (lane = created);
  }

  #enqueued(stream: Stream): void {
    stream.lane.queue.push(null);
  }

  /**
   * A lane worker: runs the best ready job. The slot is freed before the job's requests are
   * settled; when another job is already waiting, it starts only after a setImmediate, so a busy
   * lane yields to the event loop (timers, I/O) between jobs. An idle lane takes the next request
   * at once, adding no event-loop turn to a lone request.
   */
  #work(lane: Lane, done: (err: Error | null) => void): void {
    const job = this.#pick(lane);
    if (!job) {
      done(null);
      this.#checkIdle();
      return;
    }
    lane.running++;
    void this.#run(job.stream, job.requests, job.now, done);
  }

  #release(lane: Lane, done: (err: Error | null) => void): void {
    lane.running--;
    if (lane.queue.length() > 0) setImmediate(() => { done(null); this.#checkIdle(); });
    else { done(null); if (this.#idleWaiters.length) queueMicrotask(() => this.#checkIdle()); }
  }

  /** The job to run next, and the clock reading it was picked at (its start). */
  #pick(lane: Lane): { stream: Stream; requests: Request[]; now: number } | undefined {
    const now = this.#clock.now();
    let best: Stream | undefined;
    for (const s of lane.streams) {
      for (const r of s.queue.removeExpired(now)) {
        this.#drop(s, r, 'expired', `deadline passed ${(now - r.deadline).toFixed(1)} ms before it could run`);
      }
      if (s.paused || !s.queue.depth || !this.#ready(s, now)) continue;
      if (!best) best = s;
      else if (s.priority === best.priority && s.queue.oldest!.submittedAt < best.queue.oldest!.submittedAt) best = s;
    }
    if (!best) return undefined;
    const max = best.options.batch?.maxSize ?? 1;
    best.batchDue = false;
    const requests = best.queue.take(max);
    if (best.queue.depth && best.options.batch) this.#armBatchTimer(best, now);
    return { stream: best, requests, now };
  }

  /** A micro-batching stream is ready when its batch is full or its oldest request's window ran out. */
  #ready(s: Stream, now: number): boolean {
    const batch = s.options.batch;
    if (!batch || s.queue.depth >= batch.maxSize || s.batchDue) return true;
    if (now - s.queue.oldest!.submittedAt >= batch.maxWaitMs) return true;
    this.#armBatchTimer(s, now);
    return false;
  }

  #armBatchTimer(s: Stream, now: number): void {
    if (s.batchTimer !== undefined) return;
    const wait = Math.max(0, s.queue.oldest!.submittedAt + s.options.batch!.maxWaitMs - now);
    s.batchTimer = setTimeout(() => {
      s.batchTimer = undefined;
      if (!s.queue.depth) return;
      s.batchDue = true;
      s.lane.queue.push(null);
    }, wait);
  }

  /** Runs one job; an async method rather than .then() callbacks: no closures on every request's path. */
  async #run(stream: Stream, requests: Request[], start: number, done: (err: Error | null) => void): Promise<void> {
    let runs: PlacedRun | PlacedRun[];
    try {
      const direct = stream.model.direct;
      if (requests.length > 1) runs = await this.#runBatch(stream, requests);
      else if (direct) runs = { outputs: await direct.prepared.run(requests[0]!.feeds), backend: direct.backend };
      else runs = await stream.model.run(requests[0]!.feeds);
    } catch (e) {
      this.#release(stream.lane, done);
      const err = e instanceof Error ? e : new Error(String(e));
      for (const r of requests) this.#settle(r, () => r.reject(err));
      stream.metrics.failed += requests.length;
      stream.lane.metrics.failed += requests.length;
      return;
    }
    if (this.#serviceTimeMs) {
      const free = stream.lane.freeAt;
      let slot = 0;
      for (let i = 1; i < free.length; i++) if (free[i]! < free[slot]!) slot = i;
      // From its arrival, not its pick-up: a late pick-up is the host's delay, not the modelled device's.
      const end = Math.max(requests[0]!.submittedAt, free[slot]!) + this.#serviceTimeMs();
      free[slot] = end;
      const left = end - this.#clock.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
    this.#complete(stream, requests, runs, start, done);
  }

  /** Settles a job's requests; `runs` is one run per request, or the single request's run. */
  #complete(stream: Stream, requests: Request[], runs: PlacedRun[] | PlacedRun, start: number, done: (err: Error | null) => void): void {
    const end = this.#clock.now();
    this.#release(stream.lane, done);
    const serviceMs = end - start;
    const { metrics, lane } = stream;
    metrics.batches++;
    metrics.service.record(serviceMs);
    lane.metrics.service.record(serviceMs);
    lane.metrics.wait.record(start - requests[0]!.submittedAt); // the job's oldest request
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!;
      const run = Array.isArray(runs) ? runs[i]! : runs;
      const waitMs = start - r.submittedAt;
      metrics.completed++;
      lane.metrics.completed++;
      metrics.wait.record(waitMs);
      if (end > r.deadline) metrics.late++;
      const result: InferenceResult = { outputs: run.outputs, backend: run.backend, waitMs, serviceMs, batchSize: requests.length };
      if (run.modelVersion !== undefined) result.modelVersion = run.modelVersion;
      if (run.backend === 'digital-fallback') {
        const reason = run.fallbackReason ?? 'unknown';
        result.fallbackReason = reason;
        metrics.fallbacks.add(reason);
        lane.metrics.fallbacks.add(reason);
      }
      if (!r.settled) { r.settled = true; r.resolve(result); }
    }
  }

  /** One call for the whole micro-batch when the feeds stack; otherwise one call per request. */
  async #runBatch(stream: Stream, requests: Request[]): Promise<PlacedRun[]> {
    const model = stream.model;
    const feeds = requests.map((r) => r.feeds);
    if (unbatchable(feeds) === undefined) {
      const run = await model.run(concatFeeds(feeds));
      try {
        return splitOutputs(run.outputs, requests.map((r) => r.rows)).map((outputs) => ({ ...run, outputs }));
      } catch {
        // An output without a batch axis: fall through and run them one by one.
      }
    }
    const runs: PlacedRun[] = [];
    for (const r of requests) runs.push(await model.run(r.feeds));
    return runs;
  }

  #drop(stream: Stream, r: Request, reason: DropReason, detail: string): void {
    if (reason === 'expired') stream.metrics.expired++; else stream.metrics.dropped++;
    this.#settle(r, () => r.reject(new RequestDroppedError(reason, stream.name, `stream '${stream.name}' request ${r.id}: ${detail}`)));
  }

  #settle(r: Request, fn: () => void): void {
    if (r.settled) return;
    r.settled = true;
    fn();
  }

  #isIdle(): boolean {
    for (const l of this.#lanes.values()) if (l.running || !l.queue.idle()) return false;
    for (const s of this.#streams.values()) if (s.queue.depth || s.queue.waiting) return false;
    return true;
  }

  #checkIdle(): void {
    if (!this.#idleWaiters.length || !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
