/**
 * The device `edgerun serve` runs: a data set replayed as a sensor through the stream pipeline
 * (runtime/pipeline/stream-pipeline.ts: placement, scheduler, guard, energy, governor, telemetry,
 * commands), each result published on `results`:
 *
 *   sample source (dataset replay, per stream, at a rate) → pipeline.turn() → pipeline.infer() →
 *   result (top-1, energy) → publisher (`results`)
 *
 * Progress (result numbers accepted, next sample per stream; ./progress.ts) lives in the state
 * directory, so a restarted process continues where it left off: with `count`, the device produces
 * result numbers 0..count-1 in total over all its runs. A result is recorded right after the
 * reporter journaled it; only a SIGKILL between those two writes makes the restarted device produce
 * that number again, under a new sequence number (at-least-once; consumers see a repeated `n`).
 */
import { basename } from 'node:path';
import type { BackendRegistry } from '../../../runtime/backend.js';
import type { Config } from '../../../runtime/config.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import type { Storage } from '../../../runtime/ports.js';
import { Progress } from './progress.js';
import type { InferenceResult, PlacedModel } from '../../../runtime/scheduler/types.js';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import type { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import type { Dataset } from '../../../runtime/dataset.js';
import type { PowerSensor } from '../../../runtime/power/sensor.js';
import { StreamPipeline, type PipelineStream, type Publisher } from '../../../runtime/pipeline/stream-pipeline.js';
import type { DeviceQuery, ResultQuery } from '../../../runtime/fleet/fleet-sut.js';
import type { Feeds } from '../../../runtime/model/feeds.js';

/** Takes the energy each inference cost (a simulated battery, drivers/power/simulated-battery.ts). */
export interface EnergySink {
  consume(joules: number): void;
}

export interface DeviceOptions {
  config: Config;
  registry: BackendRegistry;
  /** Model id → loaded model. */
  models: ReadonlyMap<string, LoadedModel>;
  source: DatasetSource;
  publisher: Publisher;
  /** Progress state (results produced, next sample per stream). */
  storage: Storage;
  /** Inferences per second per stream; 0 = as fast as the device goes (one request in flight per stream). */
  rateHz: number;
  /**
   * streams (default): the device replays its data set on every stream at rateHz. queries: it runs
   * only what a load generator asks (query()), no stream of its own.
   */
  drive?: 'streams' | 'queries';
  /** A modelled service time per inference, ms (runtime/service-time.ts). */
  serviceTimeMs?: () => number;
  /** Produce exactly this many results over all runs (with the state dir), then stop. */
  count?: number;
  telemetryIntervalMs: number;
  /** Canary set for the accuracy guard (config.guard.enabled): checks models served on the analog device. */
  canary?: Dataset;
  /** The sensor that stands for the device's power (battery, board monitor, RAPL), read every governor tick. */
  sensor?: PowerSensor;
  /** Drained by each inference's modelled energy. */
  battery?: EnergySink;
  /** Bundle version of models that came from a deployment (runtime/deploy); named in their results. */
  versions?: ReadonlyMap<string, string>;
  /** Extra sections of the telemetry body (reporter and command counters). */
  extraTelemetry?: () => Record<string, unknown>;
  log?: (line: string) => void;
}

export function modelIdOf(path: string): string {
  const id = basename(path).replace(/\.onnx$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  return id || 'model';
}

function top1(result: InferenceResult): { cls: number; score: number } {
  const out = Object.values(result.outputs)[0];
  const data = out?.data as ArrayLike<number> | undefined;
  if (!data || data.length === 0) return { cls: -1, score: NaN };
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) if (data[i]! > max) { max = data[i]!; best = i; }
  // Softmax probability of the top class (the models return logits).
  let z = 0;
  for (let i = 0; i < data.length; i++) z += Math.exp(data[i]! - max);
  return { cls: best, score: 1 / z };
}

/** The streams serve runs: config.scheduler.streams, or one per model. */
function streamsOf(o: DeviceOptions): PipelineStream[] {
  const configured = Object.entries(o.config.scheduler.streams);
  const streams = configured.length ? configured : [...o.models.keys()].map((id) => [id, { model: id, priority: 0, capacity: 16, policy: 'block' as const }] as const);
  return streams.map(([name, options]) => ({ name, options, rateHz: o.rateHz }));
}

export class Device {
  /** Durable: which result numbers the publisher accepted, where each stream continues. */
  readonly #progress: Progress;
  /** Next sample per stream. */
  readonly #next = new Map<string, number>();
  /** Next result number to hand out. */
  #nextN: number;
  #loops: Promise<void>[] = [];
  /** Load-generator queries being served. */
  readonly #queries = new Set<Promise<void>>();
  #doneResolve!: () => void;
  /** Resolves when `count` results are produced (accepted by the publisher), or the device stopped. */
  readonly done: Promise<void>;

  private constructor(readonly options: DeviceOptions, readonly pipeline: StreamPipeline, progress: Progress) {
    this.#progress = progress;
    this.#nextN = progress.firstFree;
    for (const name of pipeline.streamNames) this.#next.set(name, progress.nextSample(name));
    this.done = new Promise((r) => { this.#doneResolve = r; });
  }

  static async create(options: DeviceOptions): Promise<Device> {
    const progress = await Progress.open(options.storage);
    const pipeline = await StreamPipeline.create({
      config: options.config, registry: options.registry, models: options.models, versions: options.versions, streams: streamsOf(options),
      profile: loadProfile(options.config.analog.profile), publisher: options.publisher, telemetryIntervalMs: options.telemetryIntervalMs,
      canary: options.canary, sensor: options.sensor, log: options.log, ...(options.serviceTimeMs ? { serviceTimeMs: options.serviceTimeMs } : {}),
      extraTelemetry: () => ({ results: progress.results, ...options.extraTelemetry?.() }),
    });
    return new Device(options, pipeline, progress);
  }

  get produced(): number { return this.#progress.results; }
  get streamNames(): string[] { return this.pipeline.streamNames; }

  start(): void {
    if (this.options.count !== undefined && this.#progress.results >= this.options.count) {
      this.#doneResolve();
      return;
    }
    this.pipeline.start();
    if (this.options.drive === 'queries') return;
    for (const name of this.pipeline.streamNames) this.#loops.push(this.#loop(name));
  }

  /**
   * A load generator's query (drive: 'queries'): its samples through the pipeline on the first
   * stream, each result published with the query's run, id, the sample's place in it and the issue
   * time, so a consumer of the broker completes the query and times it. A sample whose inference
   * fails still gets its result (class -1, the error): every sample asked has exactly one.
   */
  query(q: DeviceQuery): Promise<void> {
    const stream = this.pipeline.streamNames[0]!;
    const served = Promise.all(q.samples.map(async (index, k) => {
      const sample = this.options.source.sample(index);
      const query: ResultQuery = { run: q.run, id: q.id, k: q.offset + k, of: q.of, issuedAt: q.issuedAt };
      let body: Record<string, unknown>;
      try {
        const result = await this.pipeline.infer(stream, this.#feeds(stream, sample));
        body = { ...this.#resultBody(stream, this.#takeNumber(), sample, result), query };
      } catch (e) {
        if (this.pipeline.stopping) return;
        body = { n: this.#takeNumber(), stream, model: this.pipeline.modelOf(stream), sample: sample.index, item: sample.item, class: -1, label: sample.label, correct: false, error: (e as Error).message, query };
      }
      await this.#publishResult(body, stream);
    })).then(() => undefined);
    this.#queries.add(served);
    void served.finally(() => this.#queries.delete(served));
    return served;
  }

  /** The next result number not yet accepted (a previous run may have had later ones accepted). */
  #takeNumber(): number {
    while (this.#progress.isAccepted(this.#nextN)) this.#nextN++;
    return this.#nextN++;
  }

  /** Publishes a result until the outbox takes it (retrying while it is full), then records it; false when the device stopped first. */
  async #publishResult(body: Record<string, unknown>, stream: string): Promise<boolean> {
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2000)) {
      try {
        await this.options.publisher.publish('results', body);
        break;
      } catch (e) {
        // The outbox refused it (full, or closing): keep the result and try again; nothing accepted is lost.
        this.options.log?.(`result ${String(body.n)} not accepted yet: ${(e as Error).message}`);
        if (this.pipeline.stopping) return false;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
    await this.#markAccepted(body.n as number, stream);
    void this.pipeline.governor.tick().catch(() => undefined);
    return true;
  }

  /**
   * Stops producing, waits for the requests in flight and the last progress write, publishes the
   * last telemetry (while the models are still loaded: it describes the device as it ran), then
   * disposes the models.
   */
  async stop(): Promise<void> {
    this.pipeline.halt();
    await Promise.all([...this.#loops, ...this.#queries]);
    await this.#progress.close();
    await this.pipeline.close();
    this.#doneResolve();
  }

  publishSnapshot(): Promise<{ seq?: number }> {
    return this.pipeline.publishSnapshot();
  }

  // ---- deployment hook (runtime/deploy DeployHost, wired in apps/edgerun/device/deployment.ts) ----

  placeCandidate(id: string, model: LoadedModel): Promise<PlacedModel> { return this.pipeline.placeCandidate(id, model); }

  energyPerInference(model: LoadedModel, placed: PlacedModel): Promise<number | undefined> { return this.pipeline.energyPerInference(model, placed); }

  swapModel(id: string, model: LoadedModel, placed: PlacedModel | undefined, version: string | undefined): Promise<void> {
    return this.pipeline.swapModel(id, model, placed, version);
  }

  /** The input name and dims the streams that use model `id` feed (undefined when no stream uses it). */
  streamInputs(id: string): { name: string; dims: number[] }[] | undefined {
    const users = this.pipeline.streamNames.filter((s) => this.pipeline.modelOf(s) === id);
    return users.length ? users.map(() => ({ name: this.#inputName(id), dims: this.options.source.sample(0).shape })) : undefined;
  }

  /** Samples go to the model's (first) input under its own name: other people's models call it what they like. */
  #inputName(id: string): string {
    return this.pipeline.model(id).inputs[0]!.name;
  }

  /** One sample as the feeds of the model `stream` runs (looked up each time: a deployment may swap the model). */
  #feeds(stream: string, sample: ReturnType<DatasetSource['sample']>): Feeds {
    return { [this.#inputName(this.pipeline.modelOf(stream))]: { type: 'float32', data: sample.input, dims: sample.shape } };
  }

  /** Every result number is handed out. */
  #countReached(): boolean {
    return this.options.count !== undefined && this.#nextN >= this.options.count;
  }

  async #markAccepted(n: number, stream: string): Promise<void> {
    await this.#progress.accepted(n, stream, this.#next.get(stream)!).catch((e: Error) => this.options.log?.(`progress not recorded: ${e.message}`));
    if (this.options.count !== undefined && this.#progress.results >= this.options.count) this.#doneResolve();
  }

  async #loop(stream: string): Promise<void> {
    const pipeline = this.pipeline;
    let failures = 0;
    while (!this.#countReached() && await pipeline.turn(stream)) {
      const sample = this.options.source.sample(this.#next.get(stream)!);
      let result: InferenceResult;
      try {
        result = await pipeline.infer(stream, this.#feeds(stream, sample));
      } catch (e) {
        if (pipeline.stopping) break;
        pipeline.event({ type: 'inference-failed', stream, error: (e as Error).message });
        this.#next.set(stream, this.#next.get(stream)! + 1);
        // Back off while every inference fails: at --rate 0 a failing model would otherwise loop on
        // microtasks, flood events and never let a signal handler run.
        await new Promise((r) => setTimeout(r, Math.min(10 * 2 ** failures++, 1000)));
        continue;
      }
      failures = 0;
      // Numbers a previous run already got accepted out of order are skipped.
      while (this.#progress.isAccepted(this.#nextN)) this.#nextN++;
      if (this.#countReached()) break;
      const n = this.#nextN++;
      this.#next.set(stream, this.#next.get(stream)! + 1);
      // Accounted once (energy, backend change); only the publish is retried.
      if (!await this.#publishResult(this.#resultBody(stream, n, sample, result), stream)) return;
    }
  }

  /** The `results` body of one inference; records its energy and reports a change of backend. */
  #resultBody(stream: string, n: number, sample: ReturnType<DatasetSource['sample']>, r: InferenceResult): Record<string, unknown> {
    const { cls, score } = top1(r);
    const energyJ = this.pipeline.account(stream, r);
    if (energyJ !== undefined) this.options.battery?.consume(energyJ);
    const names = this.options.source.classNames;
    return {
      n, stream, model: this.pipeline.modelOf(stream), ...(r.modelVersion !== undefined ? { modelVersion: r.modelVersion } : {}), sample: sample.index, item: sample.item,
      class: cls, ...(names?.[cls] ? { className: names[cls] } : {}), score: Number(score.toFixed(4)),
      label: sample.label, ...(sample.labelName ? { labelName: sample.labelName } : {}), correct: cls === sample.label,
      backend: r.backend, ...(r.fallbackReason ? { fallbackReason: r.fallbackReason } : {}),
      latencyMs: Number((r.waitMs + r.serviceMs).toFixed(3)), waitMs: Number(r.waitMs.toFixed(3)), serviceMs: Number(r.serviceMs.toFixed(3)),
      ...(energyJ !== undefined ? { energyJ } : {}),
    };
  }
}
