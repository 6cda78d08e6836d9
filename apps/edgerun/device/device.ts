/**
 * The device: what `edgerun serve` runs between its MQTT connection and its models.
 *
 *   sample source (dataset replay, per stream, at a rate) → scheduler → placed model (analog with
 *   digital fallback, or digital) → result → publisher (`results`) ; periodic `telemetry`;
 *   `events` for fallbacks, placement changes and governor decisions; a CommandTarget for signed
 *   commands (power budget, placement, snapshot, pause/resume a stream).
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
import type { OutgoingKind } from '../../../runtime/telemetry/topics.js';
import { ModelPlacer } from '../../../runtime/scheduler/placement.js';
import { Scheduler } from '../../../runtime/scheduler/scheduler.js';
import { SwitchableModel } from '../../../runtime/scheduler/switchable-model.js';
import { VersionedModel, withVersion } from '../../../runtime/deploy/versioned-model.js';
import type { InferenceResult, PlacedModel } from '../../../runtime/scheduler/types.js';
import { telemetrySnapshot, type TelemetryBody } from '../../../runtime/telemetry/telemetry-snapshot.js';
import { EnergyModel } from '../../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../../runtime/power/inference-costs.js';
import { EnergyLedger } from '../../../runtime/power/ledger.js';
import { Governor, type GovernorEvent } from '../../../runtime/power/governor.js';
import type { GovernedSystem } from '../../../runtime/power/governed-system.js';
import type { GovernorPolicyInput } from '../../../runtime/power/policy.js';
import { observedSummary } from '../../../runtime/power/model-summary.js';
import { deviceEnergyOf } from '../../../runtime/power/energy-constants.js';
import type { Placement } from '../../../runtime/power/work.js';
import { DIGITAL_BACKEND } from '../../../drivers/digital/ort-backend.js';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import type { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import { PowerMeter } from '../../../runtime/power/power-meter.js';
import type { Dataset } from '../../../runtime/dataset.js';
import { FallbackModel } from '../../../runtime/scheduler/fallback-model.js';
import { AnalogBackend } from '../../../runtime/hybrid/analog-backend.js';
import { guardHybridModel } from '../../../runtime/guard/hybrid-target.js';
import type { AccuracyGuard } from '../../../runtime/guard/accuracy-guard.js';
import type { PowerSensor } from '../../../runtime/power/sensor.js';
import { systemClock } from '../../../runtime/power/clock.js';
import type { PlacementPolicy } from '../../../runtime/backend.js';
import type { CommandTarget } from '../../../runtime/telemetry/commands.js';

/** Where the device's messages go: A's Reporter (durable outbox) in the daemon. */
export interface Publisher {
  /** Resolves once the message is accepted (for durable kinds: stored in the outbox). */
  publish(kind: OutgoingKind, body: unknown): Promise<unknown>;
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
  /** Produce exactly this many results over all runs (with the state dir), then stop. */
  count?: number;
  telemetryIntervalMs: number;
  /** Canary set for the accuracy guard (config.guard.enabled): checks models served on the analog device. */
  canary?: Dataset;
  /** The sensor that stands for the device's power (battery, board monitor, RAPL), read every governor tick. */
  sensor?: PowerSensor;
  /** Bundle version of models that came from a deployment (runtime/deploy); named in their results. */
  versions?: ReadonlyMap<string, string>;
  /** Extra sections of the telemetry body (reporter and command counters). */
  extraTelemetry?: () => Record<string, unknown>;
  log?: (line: string) => void;
}

interface StreamState {
  name: string;
  model: string;
  next: number;
  rateHz: number;
  /** The governor set its rate (an unpaced stream is paced from then on). */
  governed: boolean;
  paused: boolean;
  shed: boolean;
  lastBackend?: string;
  wake?: () => void;
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

export class Device implements CommandTarget {
  readonly scheduler: Scheduler;
  readonly placer: ModelPlacer;
  readonly ledger: EnergyLedger;
  #governor: Governor | undefined;
  readonly meter: PowerMeter | undefined;
  #sensorTimer: ReturnType<typeof setInterval> | undefined;
  readonly #guards = new Map<string, AccuracyGuard>();
  #started = false;
  #programmedAt: number | undefined;
  readonly #models = new Map<string, SwitchableModel>();
  /** What each model id serves (a deployment replaces entries), and the bundle version of each deployed one. */
  readonly #loaded: Map<string, LoadedModel>;
  readonly #versions = new Map<string, string>();
  readonly #streams = new Map<string, StreamState>();
  readonly #costs: InferenceCostTable;
  #adcBits: number;
  readonly #startedMs = performance.now();
  /** Durable: which result numbers the publisher accepted, where each stream continues. */
  #progress!: Progress;
  /** Next result number to hand out. */
  #nextN = 0;
  #stopping = false;
  #loops: Promise<void>[] = [];
  #telemetryTimer: ReturnType<typeof setInterval> | undefined;
  #doneResolve!: () => void;
  /** Resolves when `count` results are produced (accepted by the publisher), or the device stopped. */
  readonly done: Promise<void>;
  #pausedAll = false;

  private constructor(readonly options: DeviceOptions, costs: InferenceCostTable, adcBits: number) {
    const { config } = options;
    this.#costs = costs;
    this.#adcBits = adcBits;
    this.#loaded = new Map(options.models);
    for (const [id, v] of options.versions ?? []) this.#versions.set(id, v);
    const f = config.fallback;
    this.placer = new ModelPlacer(options.registry, {
      supervisor: { healthIntervalMs: f.healthIntervalMs, healthTimeoutMs: f.healthTimeoutMs, probeInitialMs: f.probeInitialMs, probeMaxMs: f.probeMaxMs },
      fallback: { runTimeoutMs: f.runTimeoutMs },
    });
    this.scheduler = new Scheduler({ concurrency: config.scheduler.concurrency });
    // Wall-clock ms for the power side: sensors stamp their readings with it.
    this.ledger = new EnergyLedger(systemClock);
    this.meter = options.sensor ? new PowerMeter({ sensor: options.sensor.describe().id }) : undefined;
    this.done = new Promise((r) => { this.#doneResolve = r; });
  }

  static async create(options: DeviceOptions): Promise<Device> {
    const { config, registry } = options;
    registry.setPlacement(config.placement);
    // Energy: the crossbar profile's converter and tile figures; the graphs' work observed with onnxruntime.
    const profile = loadProfile(config.analog.profile);
    const costs = new InferenceCostTable({ energy: new EnergyModel(deviceEnergyOf(profile).energy), tile: { rows: profile.tile.rows, cols: profile.tile.cols }, dacBits: profile.dac.bits ?? undefined });
    const digital = await registry.get(DIGITAL_BACKEND);
    for (const [id, m] of options.models) costs.add(id, await observedSummary(digital, m));
    const device = new Device(options, costs, profile.adc.bits ?? 8);
    await device.#init();
    return device;
  }

  async #init(): Promise<void> {
    const { config, models, storage } = this.options;
    this.#progress = await Progress.open(storage);
    this.#nextN = this.#progress.firstFree;
    for (const [id, model] of models) {
      const policy = this.options.registry.placementOf(id);
      this.#models.set(id, new SwitchableModel(withVersion(await this.placer.place(id, model, policy), this.#versions.get(id)), policy));
      this.scheduler.addModel(this.#models.get(id)!);
    }
    for (const id of this.#models.keys()) await this.#guard(id);
    // The analog device's weights were programmed now: its drift age counts from here.
    if ([...this.#models.values()].some((m) => m.current.lane !== DIGITAL_BACKEND)) this.#programmedAt = performance.now();
    const configured = Object.entries(config.scheduler.streams);
    const streams = configured.length ? configured : [...models.keys()].map((id) => [id, { model: id, priority: 0, capacity: 16, policy: 'block' as const }] as const);
    for (const [name, s] of streams) {
      if (!models.has(s.model)) throw new Error(`config scheduler.streams.${name}.model: no model '${s.model}' (models: ${[...models.keys()].join(', ')})`);
      this.scheduler.addStream(name, s);
      this.#streams.set(name, { name, model: s.model, next: this.#progress.nextSample(name), rateHz: this.options.rateHz, governed: false, paused: false, shed: false });
    }
    const placements: Record<string, Placement> = {};
    for (const [id, m] of this.#models) placements[id] = m.current.lane === DIGITAL_BACKEND ? 'digital' : 'analog';
    this.#governor = new Governor({
      system: this.#governedSystem(), costs: this.#costs, clock: systemClock, meter: this.meter,
      streams: [...this.#streams.values()].map((s, i) => ({ id: s.name, model: s.model, priority: (streams[i]![1].priority ?? 0), rateHz: this.options.rateHz > 0 ? this.options.rateHz : 10 })),
      policy: config.power.governor, placements, adcBits: this.#adcBits, idleW: config.power.idleWatts, ledger: this.ledger,
    });
    this.governor.on((e) => this.#event({ type: 'governor', ...governorEventBody(e) }));
  }

  /** The power governor (set up by create()). */
  get governor(): Governor { return this.#governor!; }

  get produced(): number { return this.#progress.results; }
  get streamNames(): string[] { return [...this.#streams.keys()]; }

  /** Guards a model served on the hybrid analog backend (config.guard.enabled); escalations become events. */
  async #guard(id: string): Promise<void> {
    const old = this.#guards.get(id);
    old?.stop();
    this.#guards.delete(id);
    if (old) this.scheduler.attachGuard(id, { snapshot: () => ({ model: id, state: 'off', reason: 'not served on the analog device' }) });
    const current = this.#models.get(id)!.current;
    const served = current instanceof VersionedModel ? current.inner : current;
    const g = this.options.config.guard;
    if (!g.enabled || !this.options.canary || !(served instanceof FallbackModel)) return;
    const backend = await this.options.registry.get(served.lane).catch(() => undefined);
    if (!(backend instanceof AnalogBackend)) return;
    const guard = guardHybridModel(served, backend, await this.options.registry.get(DIGITAL_BACKEND), {
      canary: this.options.canary,
      thresholds: { agreementLow: g.agreementLow, agreementHigh: g.agreementHigh, cosineLow: g.cosineLow, cosineHigh: g.cosineHigh },
    });
    guard.on('escalation', (e: unknown) => this.#event({ type: 'guard', ...(jsonSafe(e) as Record<string, unknown>) }));
    this.scheduler.attachGuard(id, guard);
    this.#guards.set(id, guard);
    if (this.#started) guard.start(g.intervalMs);
  }

  start(): void {
    this.#started = true;
    for (const guard of this.#guards.values()) guard.start(this.options.config.guard.intervalMs);
    if (this.options.count !== undefined && this.#progress.results >= this.options.count) {
      this.#doneResolve();
      return;
    }
    for (const s of this.#streams.values()) this.#loops.push(this.#loop(s));
    if (this.options.sensor && this.meter) {
      const sensor = this.options.sensor;
      const meter = this.meter;
      const read = (): void => {
        void sensor.read().then((r) => { meter.observe(r); return this.governor.tick(); }).catch(() => undefined);
      };
      read();
      this.#sensorTimer = setInterval(read, Math.max(100, this.governor.policy.tickS * 1000));
      this.#sensorTimer.unref?.();
    }
    this.#telemetryTimer = setInterval(() => { void this.publishSnapshot().catch(() => undefined); }, this.options.telemetryIntervalMs);
    this.#telemetryTimer.unref?.();
    void this.publishSnapshot().catch(() => undefined);
  }

  /**
   * Stops producing, waits for the requests in flight and the last progress write, publishes the
   * last telemetry (while the models are still loaded: it describes the device as it ran), then
   * disposes the models.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#telemetryTimer);
    clearInterval(this.#sensorTimer);
    for (const guard of this.#guards.values()) guard.stop();
    for (const s of this.#streams.values()) s.wake?.();
    await Promise.all(this.#loops);
    await this.#progress.close();
    this.placer.dispose();
    await this.scheduler.close();
    await this.publishSnapshot().catch(() => undefined);
    for (const m of this.#models.values()) await m.dispose().catch(() => undefined);
    this.#doneResolve();
  }

  telemetry(): TelemetryBody {
    const paused = [...this.#streams.values()].filter((s) => s.paused || s.shed || this.#pausedAll).map((s) => s.name);
    return telemetrySnapshot({
      scheduler: this.scheduler.snapshot(), uptimeMs: performance.now() - this.#startedMs,
      ...(this.#programmedAt !== undefined ? { deviceAgeS: (performance.now() - this.#programmedAt) / 1000 } : {}),
      governor: this.governor.status(), ledger: this.ledger, meter: this.meter, idleW: this.options.config.power.idleWatts, paused,
    });
  }

  async publishSnapshot(): Promise<{ seq?: number }> {
    const p = await this.options.publisher.publish('telemetry', { ...this.telemetry(), results: this.#progress.results, ...this.options.extraTelemetry?.() });
    const seq = (p as { seq?: number } | undefined)?.seq;
    return seq === undefined ? {} : { seq };
  }

  // ---- CommandTarget (B's runtime/telemetry/commands.ts) ----

  async setPowerBudget(change: GovernorPolicyInput): Promise<unknown> {
    const policy = this.governor.setPolicy(change, 'command');
    await this.governor.tick(true);
    return { policy: jsonSafe(policy), status: jsonSafe(this.governor.status()) };
  }

  /** Re-places one model (or, without `model`, every model and the default) on the policy's backend. */
  async setPlacement(change: { model?: string; policy: PlacementPolicy }): Promise<unknown> {
    const ids = change.model === undefined ? [...this.#models.keys()] : [change.model];
    for (const id of ids) if (!this.#models.has(id)) throw new Error(`no model '${id}' (models: ${[...this.#models.keys()].join(', ')})`);
    this.options.registry.setPlacement(change.model === undefined ? { default: change.policy } : { models: { [change.model]: change.policy } });
    const moved: Record<string, { from: string; to: string }> = {};
    for (const id of ids) {
      const m = this.#models.get(id)!;
      const next = withVersion(await this.placer.place(id, this.#loaded.get(id)!, change.policy), this.#versions.get(id));
      const from = m.current.lane;
      this.#guards.get(id)?.stop();
      await m.replace(next, change.policy);
      await this.#guard(id);
      moved[id] = { from, to: next.lane };
      this.#event({ type: 'placement', model: id, policy: change.policy, from, to: next.lane });
    }
    return moved;
  }

  // ---- deployment hook (runtime/deploy DeployHost, wired in apps/edgerun/device/deploy-host.ts) ----

  /** Places a model where model `id` is served now, without serving it (a deployment's self-test). */
  placeCandidate(id: string, model: LoadedModel): Promise<PlacedModel> {
    const m = this.#models.get(id);
    if (!m) throw new Error(`no model '${id}'`);
    return this.placer.place(id, model, m.placement as PlacementPolicy);
  }

  /** Modelled energy per inference (J) of a model placed as `placed` is. */
  async energyPerInference(model: LoadedModel, placed: PlacedModel): Promise<number | undefined> {
    const key = '\u0000deploy-candidate';
    this.#costs.add(key, await observedSummary(await this.options.registry.get(DIGITAL_BACKEND), model));
    return this.#costs.breakdown(key, placed.lane === DIGITAL_BACKEND ? 'digital' : 'analog', this.#adcBits)?.total;
  }

  /** Input dims the streams that use model `id` feed (undefined when no stream uses it). */
  streamInputs(id: string): number[][] | undefined {
    const users = [...this.#streams.values()].filter((s) => s.model === id);
    return users.length ? users.map(() => this.options.source.sample(0).shape) : undefined;
  }

  /** Serves `model` for `id` from the next inference on; requests already running finish on the old one. */
  async swapModel(id: string, model: LoadedModel, placed: PlacedModel | undefined, version: string | undefined): Promise<void> {
    const m = this.#models.get(id);
    if (!m) throw new Error(`no model '${id}'`);
    const next = withVersion(placed ?? await this.placer.place(id, model, m.placement as PlacementPolicy), version);
    this.#costs.add(id, await observedSummary(await this.options.registry.get(DIGITAL_BACKEND), model));
    this.#guards.get(id)?.stop();
    this.#loaded.set(id, model);
    if (version === undefined) this.#versions.delete(id);
    else this.#versions.set(id, version);
    await m.replace(next, m.placement);
    await this.#guard(id);
  }

  pauseStream(stream: string): unknown {
    this.#stream(stream).paused = true;
    this.#event({ type: 'stream', stream, state: 'paused' });
    return { stream, paused: true };
  }

  resumeStream(stream: string): unknown {
    const s = this.#stream(stream);
    s.paused = false;
    s.wake?.();
    this.#event({ type: 'stream', stream, state: 'resumed' });
    return { stream, paused: false };
  }

  #stream(name: string): StreamState {
    const s = this.#streams.get(name);
    if (!s) throw new Error(`no stream '${name}' (streams: ${[...this.#streams.keys()].join(', ')})`);
    return s;
  }

  #governedSystem(): GovernedSystem {
    return {
      setAdcBits: async (bits) => {
        const analog = await this.options.registry.get('analog');
        if (!(analog instanceof AnalogBackend)) throw new Error('no analog accelerator whose ADC resolution could change');
        await analog.setAdcBits(bits);
        this.#adcBits = bits;
      },
      setPlacement: async (model, placement) => { await this.setPlacement({ model, policy: placement }); },
      setStreamRate: (stream, hz) => { const s = this.#stream(stream); s.rateHz = hz; s.governed = true; },
      shedStream: (stream) => { this.#stream(stream).shed = true; },
      restoreStream: (stream) => { const s = this.#stream(stream); s.shed = false; s.wake?.(); },
      pause: () => { this.#pausedAll = true; },
      resume: () => { this.#pausedAll = false; for (const s of this.#streams.values()) s.wake?.(); },
    };
  }

  /** Every result number is handed out. */
  #countReached(): boolean {
    return this.options.count !== undefined && this.#nextN >= this.options.count;
  }

  async #markAccepted(n: number, s: StreamState): Promise<void> {
    await this.#progress.accepted(n, s.name, s.next).catch((e: Error) => this.options.log?.(`progress not recorded: ${e.message}`));
    if (this.options.count !== undefined && this.#progress.results >= this.options.count) this.#doneResolve();
  }

  #event(body: Record<string, unknown>): void {
    this.options.log?.(`event ${JSON.stringify(body)}`);
    void this.options.publisher.publish('events', body).catch(() => undefined);
  }

  async #loop(s: StreamState): Promise<void> {
    let due = performance.now();
    while (!this.#stopping && !this.#countReached()) {
      if (s.paused || s.shed || this.#pausedAll) {
        await new Promise<void>((r) => { s.wake = r; });
        s.wake = undefined;
        due = performance.now();
        continue;
      }
      const rate = this.options.rateHz > 0 || s.governed ? s.rateHz : 0;
      if (rate > 0) {
        const wait = due - performance.now();
        if (wait > 0) {
          await new Promise<void>((r) => { const t = setTimeout(r, wait); s.wake = () => { clearTimeout(t); r(); }; });
          s.wake = undefined;
          if (this.#stopping || s.paused || s.shed || this.#pausedAll) continue;
        }
        due = Math.max(due + 1000 / rate, performance.now() - 1000 / rate);
      }
      const sample = this.options.source.sample(s.next);
      let result: InferenceResult;
      try {
        result = await this.scheduler.infer(s.name, { input: { type: 'float32', data: sample.input, dims: sample.shape } });
      } catch (e) {
        if (this.#stopping) break;
        this.#event({ type: 'inference-failed', stream: s.name, error: (e as Error).message });
        s.next++;
        continue;
      }
      // Numbers a previous run already got accepted out of order are skipped.
      while (this.#progress.isAccepted(this.#nextN)) this.#nextN++;
      if (this.#countReached()) break;
      const n = this.#nextN++;
      s.next++;
      // Accounted once (energy, backend change); only the publish is retried.
      const body = this.#resultBody(s, n, sample, result);
      for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2000)) {
        try {
          await this.options.publisher.publish('results', body);
          break;
        } catch (e) {
          // The outbox refused it (full, or closing): keep the result and try again; nothing accepted is lost.
          this.options.log?.(`result ${n} not accepted yet: ${(e as Error).message}`);
          if (this.#stopping) return;
          await new Promise((r) => setTimeout(r, delayMs));
        }
      }
      await this.#markAccepted(n, s);
      void this.governor.tick().catch(() => undefined);
    }
  }

  /** The `results` body of one inference; records its energy and reports a change of backend. */
  #resultBody(s: StreamState, n: number, sample: ReturnType<DatasetSource['sample']>, r: InferenceResult): Record<string, unknown> {
    const { cls, score } = top1(r);
    const placement: Placement = r.backend === 'analog' ? 'analog' : 'digital';
    const breakdown = this.#costs.breakdown(s.model, placement, this.#adcBits);
    const energy = breakdown ? this.ledger.record(breakdown, { model: s.model }) : undefined;
    if (r.backend !== s.lastBackend) {
      if (s.lastBackend !== undefined || r.backend === 'digital-fallback') {
        this.#event({ type: r.backend === 'digital-fallback' ? 'fallback' : 'backend', stream: s.name, model: s.model, from: s.lastBackend ?? null, to: r.backend, ...(r.fallbackReason ? { reason: r.fallbackReason } : {}) });
      }
      s.lastBackend = r.backend;
    }
    const names = this.options.source.classNames;
    return {
      n, stream: s.name, model: s.model, ...(r.modelVersion !== undefined ? { modelVersion: r.modelVersion } : {}), sample: sample.index, item: sample.item,
      class: cls, ...(names?.[cls] ? { className: names[cls] } : {}), score: Number(score.toFixed(4)),
      label: sample.label, ...(sample.labelName ? { labelName: sample.labelName } : {}), correct: cls === sample.label,
      backend: r.backend, ...(r.fallbackReason ? { fallbackReason: r.fallbackReason } : {}),
      latencyMs: Number((r.waitMs + r.serviceMs).toFixed(3)), waitMs: Number(r.waitMs.toFixed(3)), serviceMs: Number(r.serviceMs.toFixed(3)),
      ...(energy ? { energyJ: energy.joules } : {}),
    };
  }

}

/** JSON has no Infinity or NaN: they travel as null. */
const jsonSafe = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x)));

function governorEventBody(e: GovernorEvent): Record<string, unknown> {
  const { type, ...rest } = e;
  return { event: type, ...(jsonSafe(rest) as Record<string, unknown>) };
}
