/**
 * The device's stream pipeline, shared by every app that streams (`edgerun serve`, `edgerun
 * detect`): models placed on the device (analog with digital fallback, or digital), the scheduler,
 * the accuracy guard, energy accounting, the power governor, periodic telemetry, operational
 * events, and the signed-command target (power budget, placement, snapshot, pause/resume).
 *
 *   source (the app's: data-set replay, camera) → turn()/admit() → infer() → account() → the app's
 *   post-processing and publishing
 *
 * Pull loops (replaying a data set) wait for their turn(), which paces a stream at its rate and holds
 * it while paused or shed. Push sources (cameras) ask admit() per frame: a frame that arrives while
 * the stream is paused, shed or ahead of its rate is skipped, never queued.
 */
import type { BackendRegistry, PlacementPolicy } from '../backend.js';
import { DIGITAL } from '../backend.js';
import type { Config } from '../config.js';
import type { Dataset } from '../dataset.js';
import type { Feeds } from '../model/feeds.js';
import type { LoadedModel } from '../model/load.js';
import { AnalogBackend } from '../hybrid/analog-backend.js';
import { guardHybridModel } from '../guard/hybrid-target.js';
import type { AccuracyGuard } from '../guard/accuracy-guard.js';
import { systemClock } from '../power/clock.js';
import { deviceEnergyOf } from '../power/energy-constants.js';
import { EnergyModel } from '../power/energy-model.js';
import { Governor, type GovernorEvent } from '../power/governor.js';
import type { GovernedSystem } from '../power/governed-system.js';
import { InferenceCostTable } from '../power/inference-costs.js';
import { EnergyLedger } from '../power/ledger.js';
import { observedSummary } from '../power/model-summary.js';
import type { GovernorPolicyInput } from '../power/policy.js';
import { PowerMeter } from '../power/power-meter.js';
import type { PowerSensor } from '../power/sensor.js';
import type { Placement } from '../power/work.js';
import { FallbackModel } from '../scheduler/fallback-model.js';
import { ModelPlacer } from '../scheduler/placement.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { SwitchableModel } from '../scheduler/switchable-model.js';
import { VersionedModel, withVersion } from '../deploy/versioned-model.js';
import type { InferenceResult, PlacedModel, StreamOptions } from '../scheduler/types.js';
import type { CommandTarget } from '../telemetry/commands.js';
import { telemetrySnapshot, type TelemetryBody } from '../telemetry/telemetry-snapshot.js';
import type { OutgoingKind } from '../telemetry/topics.js';
import { every, type Periodic } from '../periodic.js';

/** Where the device's messages go: the Reporter (durable outbox) in the daemon. */
export interface Publisher {
  /** Resolves once the message is accepted (for durable kinds: stored in the outbox). */
  publish(kind: OutgoingKind, body: unknown): Promise<unknown>;
}

/** What the energy accounting needs of the accelerator's device profile (drivers/crossbar/profile.ts). */
export interface AcceleratorProfile {
  name: string;
  energy?: unknown;
  tile: { rows: number; cols: number };
  dac: { bits?: number | null };
  adc: { bits?: number | null };
}

export interface PipelineStream {
  name: string;
  options: StreamOptions;
  /** Requests per second; 0 = unpaced (as fast as the device goes) until the governor sets a rate. */
  rateHz: number;
}

export interface StreamPipelineOptions {
  config: Config;
  registry: BackendRegistry;
  /** Model id → loaded model. */
  models: ReadonlyMap<string, LoadedModel>;
  /** Model id → the deployed bundle version it serves (runtime/deploy); absent: the file the daemon was given. */
  versions?: ReadonlyMap<string, string>;
  streams: readonly PipelineStream[];
  profile: AcceleratorProfile;
  publisher: Publisher;
  telemetryIntervalMs: number;
  /** Canary set for the accuracy guard (config.guard.enabled): checks models served on the analog device. */
  canary?: Dataset;
  /** The sensor that stands for the device's power (battery, board monitor, RAPL), read every governor tick. */
  sensor?: PowerSensor;
  /** Extra sections of the telemetry body (results produced, reporter and command counters). */
  extraTelemetry?: () => Record<string, unknown>;
  /** A modelled service time per inference, ms (runtime/service-time.ts): the device is busy at least that long. */
  serviceTimeMs?: () => number;
  log?: (line: string) => void;
}

interface StreamState {
  name: string;
  model: string;
  rateHz: number;
  /** Paced from the start (rateHz > 0) or since the governor set a rate. */
  paced: boolean;
  paused: boolean;
  shed: boolean;
  /** When the next request is due (paced streams), performance.now() ms. */
  due: number;
  lastBackend?: string;
  wake?: () => void;
}

export class StreamPipeline implements CommandTarget {
  readonly scheduler: Scheduler;
  readonly placer: ModelPlacer;
  readonly ledger: EnergyLedger;
  readonly meter: PowerMeter | undefined;
  #governor: Governor | undefined;
  #sensorTimer: Periodic | undefined;
  #telemetryTimer: Periodic | undefined;
  readonly #guards = new Map<string, AccuracyGuard>();
  readonly #models = new Map<string, SwitchableModel>();
  /** What each model id serves (a deployment replaces entries), and the bundle version of each deployed one. */
  readonly #loaded: Map<string, LoadedModel>;
  readonly #versions: Map<string, string>;
  readonly #streams = new Map<string, StreamState>();
  readonly #costs: InferenceCostTable;
  #adcBits: number;
  #started = false;
  #stopping = false;
  #pausedAll = false;
  #programmedAt: number | undefined;
  readonly #startedMs = performance.now();

  private constructor(readonly options: StreamPipelineOptions, costs: InferenceCostTable, adcBits: number) {
    const f = options.config.fallback;
    this.#loaded = new Map(options.models);
    this.#versions = new Map(options.versions ?? []);
    this.#costs = costs;
    this.#adcBits = adcBits;
    this.placer = new ModelPlacer(options.registry, {
      supervisor: { healthIntervalMs: f.healthIntervalMs, healthTimeoutMs: f.healthTimeoutMs, probeInitialMs: f.probeInitialMs, probeMaxMs: f.probeMaxMs },
      fallback: { runTimeoutMs: f.runTimeoutMs },
    });
    this.scheduler = new Scheduler({ concurrency: options.config.scheduler.concurrency, ...(options.serviceTimeMs ? { serviceTimeMs: options.serviceTimeMs } : {}) });
    // Wall-clock ms for the power side: sensors stamp their readings with it.
    this.ledger = new EnergyLedger(systemClock);
    this.meter = options.sensor ? new PowerMeter({ sensor: options.sensor.describe().id }) : undefined;
  }

  static async create(options: StreamPipelineOptions): Promise<StreamPipeline> {
    const { config, registry, profile } = options;
    registry.setPlacement(config.placement);
    // Energy: the crossbar profile's converter and tile figures; the graphs' work observed with onnxruntime.
    const costs = new InferenceCostTable({ energy: new EnergyModel(deviceEnergyOf(profile).energy), tile: { rows: profile.tile.rows, cols: profile.tile.cols }, dacBits: profile.dac.bits ?? undefined });
    const digital = await registry.get(DIGITAL);
    for (const [id, m] of options.models) costs.add(id, await observedSummary(digital, m));
    const pipeline = new StreamPipeline(options, costs, profile.adc.bits ?? 8);
    await pipeline.#init();
    return pipeline;
  }

  async #init(): Promise<void> {
    const { config, models, streams } = this.options;
    for (const [id, model] of models) {
      const policy = this.options.registry.placementOf(id);
      this.#models.set(id, new SwitchableModel(withVersion(await this.placer.place(id, model, policy), this.#versions.get(id)), policy));
      this.scheduler.addModel(this.#models.get(id)!);
    }
    for (const id of this.#models.keys()) await this.#guard(id);
    // The analog device's weights were programmed now: its drift age counts from here.
    if ([...this.#models.values()].some((m) => m.current.lane !== DIGITAL)) this.#programmedAt = performance.now();
    for (const { name, options, rateHz } of streams) {
      if (!models.has(options.model)) throw new Error(`config scheduler.streams.${name}.model: no model '${options.model}' (models: ${[...models.keys()].join(', ')})`);
      this.scheduler.addStream(name, options);
      this.#streams.set(name, { name, model: options.model, rateHz, paced: rateHz > 0, paused: false, shed: false, due: performance.now() });
    }
    const placements: Record<string, Placement> = {};
    for (const [id, m] of this.#models) placements[id] = m.current.lane === DIGITAL ? 'digital' : 'analog';
    this.#governor = new Governor({
      system: this.#governedSystem(), costs: this.#costs, clock: systemClock, meter: this.meter,
      streams: streams.map((s) => ({ id: s.name, model: s.options.model, priority: s.options.priority ?? 0, rateHz: s.rateHz > 0 ? s.rateHz : 10 })),
      policy: config.power.governor, placements, adcBits: this.#adcBits, idleW: config.power.idleWatts, ledger: this.ledger,
    });
    this.governor.on((e) => this.event({ type: 'governor', ...governorEventBody(e) }));
  }

  /**
   * Sets the analog device's age (seconds since programming: drift, drift compensation refreshed)
   * when a model is served on it, e.g. a fleet device that starts at the age its fleet file gives;
   * telemetry's deviceAgeS counts on from there.
   */
  async ageAccelerator(seconds: number): Promise<void> {
    const lanes = new Set([...this.#models.values()].map((m) => m.current.lane).filter((lane) => lane !== DIGITAL));
    for (const lane of lanes) {
      const backend = await this.options.registry.get(lane);
      if (backend instanceof AnalogBackend) await backend.driver.setAge(seconds);
    }
    if (this.#programmedAt !== undefined) this.#programmedAt = performance.now() - seconds * 1000;
  }

  /** The power governor (set up by create()). */
  get governor(): Governor { return this.#governor!; }

  get streamNames(): string[] { return [...this.#streams.keys()]; }

  get stopping(): boolean { return this.#stopping; }

  /** The id of the model a stream runs. */
  modelOf(stream: string): string {
    return this.#stream(stream).model;
  }

  /** The model placed for `id` (its current backend lane, inputs and outputs). */
  model(id: string): SwitchableModel {
    const m = this.#models.get(id);
    if (!m) throw new Error(`no model '${id}' (models: ${[...this.#models.keys()].join(', ')})`);
    return m;
  }

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
    const guard = guardHybridModel(served, backend, await this.options.registry.get(DIGITAL), {
      canary: this.options.canary,
      thresholds: { agreementLow: g.agreementLow, agreementHigh: g.agreementHigh, cosineLow: g.cosineLow, cosineHigh: g.cosineHigh },
    });
    guard.on('escalation', (e: unknown) => this.event({ type: 'guard', ...(jsonSafe(e) as Record<string, unknown>) }));
    this.scheduler.attachGuard(id, guard);
    this.#guards.set(id, guard);
    if (this.#started) guard.start(g.intervalMs);
  }

  /** Starts the guards, the power sensor's governor ticks and periodic telemetry. */
  start(): void {
    this.#started = true;
    for (const s of this.#streams.values()) s.due = performance.now();
    for (const guard of this.#guards.values()) guard.start(this.options.config.guard.intervalMs);
    if (this.options.sensor && this.meter) {
      const sensor = this.options.sensor;
      const meter = this.meter;
      const read = (): void => {
        void sensor.read().then((r) => { meter.observe(r); return this.governor.tick(); }).catch(() => undefined);
      };
      read();
      this.#sensorTimer = every(Math.max(100, this.governor.policy.tickS * 1000), read);
    }
    this.#telemetryTimer = every(this.options.telemetryIntervalMs, () => { void this.publishSnapshot().catch(() => undefined); });
    void this.publishSnapshot().catch(() => undefined);
  }

  /** Stops producing: timers and guards stop, every waiting turn() returns false. */
  halt(): void {
    this.#stopping = true;
    this.#telemetryTimer?.stop();
    this.#sensorTimer?.stop();
    for (const guard of this.#guards.values()) guard.stop();
    for (const s of this.#streams.values()) s.wake?.();
  }

  /** After halt() and once the app's loops finished: releases the scheduler, placements and models. */
  async close(): Promise<void> {
    this.halt();
    this.placer.dispose();
    await this.scheduler.close();
    // The last telemetry while the models are still loaded: it describes the device as it ran.
    await this.publishSnapshot().catch(() => undefined);
    for (const m of this.#models.values()) await m.dispose().catch(() => undefined);
  }

  /**
   * A pull loop's next turn on `stream`: waits while the stream is paused or shed and, when it is
   * paced, until its next request is due. False once the pipeline is stopping.
   */
  async turn(stream: string): Promise<boolean> {
    const s = this.#stream(stream);
    while (!this.#stopping) {
      if (this.#held(s)) {
        await new Promise<void>((r) => { s.wake = r; });
        s.wake = undefined;
        s.due = performance.now();
        continue;
      }
      if (s.paced) {
        const wait = s.due - performance.now();
        if (wait > 0) {
          await new Promise<void>((r) => { const t = setTimeout(r, wait); s.wake = () => { clearTimeout(t); r(); }; });
          s.wake = undefined;
          if (this.#stopping || this.#held(s)) continue;
        }
        s.due = Math.max(s.due + 1000 / s.rateHz, performance.now() - 1000 / s.rateHz);
      }
      return true;
    }
    return false;
  }

  /** Whether a pushed frame on `stream` is taken now (not stopping, paused, shed or ahead of its rate). */
  admit(stream: string): boolean {
    const s = this.#stream(stream);
    if (this.#stopping || this.#held(s)) return false;
    if (!s.paced) return true;
    const now = performance.now();
    if (now < s.due) return false;
    s.due = Math.max(s.due + 1000 / s.rateHz, now - 1000 / s.rateHz);
    return true;
  }

  /** One request through the scheduler on the stream's model (rejects with RequestDroppedError when shed). */
  infer(stream: string, feeds: Feeds): Promise<InferenceResult> {
    return this.scheduler.infer(stream, feeds);
  }

  /** Records the energy of one result and reports a change of backend (fallback, re-admission); returns the joules. */
  account(stream: string, r: InferenceResult): number | undefined {
    const s = this.#stream(stream);
    const placement: Placement = r.backend === 'analog' ? 'analog' : 'digital';
    const breakdown = this.#costs.breakdown(s.model, placement, this.#adcBits);
    const energy = breakdown ? this.ledger.record(breakdown, { model: s.model }) : undefined;
    if (r.backend !== s.lastBackend) {
      if (s.lastBackend !== undefined || r.backend === 'digital-fallback') {
        this.event({ type: r.backend === 'digital-fallback' ? 'fallback' : 'backend', stream: s.name, model: s.model, from: s.lastBackend ?? null, to: r.backend, ...(r.fallbackReason ? { reason: r.fallbackReason } : {}) });
      }
      s.lastBackend = r.backend;
    }
    return energy?.joules;
  }

  /** An operational `events` message (logged; a failed publish is not retried). */
  event(body: Record<string, unknown>): void {
    this.options.log?.(`event ${JSON.stringify(body)}`);
    void this.options.publisher.publish('events', body).catch(() => undefined);
  }

  telemetry(): TelemetryBody {
    const paused = [...this.#streams.values()].filter((s) => this.#held(s)).map((s) => s.name);
    return telemetrySnapshot({
      scheduler: this.scheduler.snapshot(), uptimeMs: performance.now() - this.#startedMs,
      ...(this.#programmedAt !== undefined ? { deviceAgeS: (performance.now() - this.#programmedAt) / 1000 } : {}),
      governor: this.governor.status(), ledger: this.ledger, meter: this.meter, idleW: this.options.config.power.idleWatts, paused,
    });
  }

  async publishSnapshot(): Promise<{ seq?: number }> {
    const p = await this.options.publisher.publish('telemetry', { ...this.telemetry(), ...this.options.extraTelemetry?.() });
    const seq = (p as { seq?: number } | undefined)?.seq;
    return seq === undefined ? {} : { seq };
  }

  // ---- CommandTarget (runtime/telemetry/commands.ts) ----

  async setPowerBudget(change: GovernorPolicyInput): Promise<unknown> {
    const policy = this.governor.setPolicy(change, 'command');
    await this.governor.tick(true);
    return { policy: jsonSafe(policy), status: jsonSafe(this.governor.status()) };
  }

  // ---- deployment hook (runtime/deploy DeployHost, wired in apps/edgerun/device/deployment.ts) ----

  /** Places a model where model `id` is served now, without serving it (a deployment's self-test). */
  placeCandidate(id: string, model: LoadedModel): Promise<PlacedModel> {
    return this.placer.place(id, model, this.model(id).placement as PlacementPolicy);
  }

  /** Modelled energy per inference (J) of a model placed as `placed` is. */
  async energyPerInference(model: LoadedModel, placed: PlacedModel): Promise<number | undefined> {
    const key = '\u0000deploy-candidate';
    this.#costs.add(key, await observedSummary(await this.options.registry.get(DIGITAL), model));
    return this.#costs.breakdown(key, placed.lane === DIGITAL ? 'digital' : 'analog', this.#adcBits)?.total;
  }

  /** Serves `model` for `id` from the next inference on; requests already running finish on the old one. */
  async swapModel(id: string, model: LoadedModel, placed: PlacedModel | undefined, version: string | undefined): Promise<void> {
    const m = this.model(id);
    const next = withVersion(placed ?? await this.placer.place(id, model, m.placement as PlacementPolicy), version);
    this.#costs.add(id, await observedSummary(await this.options.registry.get(DIGITAL), model));
    this.#guards.get(id)?.stop();
    this.#loaded.set(id, model);
    if (version === undefined) this.#versions.delete(id);
    else this.#versions.set(id, version);
    await m.replace(next, m.placement);
    await this.#guard(id);
  }

  /** Re-places one model (or, without `model`, every model and the default) on the policy's backend. */
  async setPlacement(change: { model?: string; policy: PlacementPolicy }): Promise<unknown> {
    const ids = change.model === undefined ? [...this.#models.keys()] : [change.model];
    for (const id of ids) this.model(id);
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
      this.event({ type: 'placement', model: id, policy: change.policy, from, to: next.lane });
    }
    return moved;
  }

  pauseStream(stream: string): unknown {
    this.#stream(stream).paused = true;
    this.event({ type: 'stream', stream, state: 'paused' });
    return { stream, paused: true };
  }

  resumeStream(stream: string): unknown {
    const s = this.#stream(stream);
    s.paused = false;
    s.wake?.();
    this.event({ type: 'stream', stream, state: 'resumed' });
    return { stream, paused: false };
  }

  #held(s: StreamState): boolean {
    return s.paused || s.shed || this.#pausedAll;
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
      setStreamRate: (stream, hz) => { const s = this.#stream(stream); s.rateHz = hz; s.paced = true; },
      shedStream: (stream) => { this.#stream(stream).shed = true; },
      restoreStream: (stream) => { const s = this.#stream(stream); s.shed = false; s.wake?.(); },
      pause: () => { this.#pausedAll = true; },
      resume: () => { this.#pausedAll = false; for (const s of this.#streams.values()) s.wake?.(); },
    };
  }
}

/** JSON has no Infinity or NaN: they travel as null. */
const jsonSafe = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x)));

function governorEventBody(e: GovernorEvent): Record<string, unknown> {
  const { type, ...rest } = e;
  return { event: type, ...(jsonSafe(rest) as Record<string, unknown>) };
}
