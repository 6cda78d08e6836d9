/**
 * A model on an accelerator backend with a digital twin loaded beside it. A request runs on the
 * accelerator unless it is degraded; a driver error, a timeout, a lost connection or an unhealthy
 * report makes that request (and the following ones, until re-admission) run on the digital model
 * instead — same feeds, same output shape — marked `digital-fallback` with the reason. On
 * re-admission the tiles are re-programmed (the device may have restarted and lost them).
 */
import type { Backend, PreparedModel } from '../backend.js';
import type { LoadedModel } from '../model/load.js';
import type { Feeds } from '../model/feeds.js';
import { ModelError } from '../model/errors.js';
import { AcceleratorError, failureKind, failureMessage, withTimeout, type FailureKind } from './failure.js';
import { ReasonCounts } from './metrics.js';
import { Mutex } from './mutex.js';
import type { AcceleratorSupervisor } from './supervisor.js';
import type { PlacedModel, PlacedRun } from './types.js';

export interface FallbackOptions {
  /** Longest an accelerator inference may take before it is abandoned for the digital path (ms). */
  runTimeoutMs?: number;
  /** Longest loading (programming) the model onto the accelerator may take (ms). */
  loadTimeoutMs?: number;
}

/** A prepared model that can re-program its tiles in place (the hybrid model can). */
interface Reprogrammable { reprogram(): Promise<void> }
const canReprogram = (p: PreparedModel): p is PreparedModel & Reprogrammable => typeof (p as Partial<Reprogrammable>).reprogram === 'function';

export type FallbackSnapshot = {
  id: string;
  placement: 'accelerator';
  backend: string;
  /** serving: on the accelerator; degraded: the accelerator failed; demoted: the accuracy guard moved it to digital. */
  state: 'serving' | 'degraded' | 'demoted';
  demotedReason?: string;
  loaded: boolean;
  analogRuns: number;
  fallbacks: Record<string, number>;
  reprograms: number;
  accelerator: ReturnType<AcceleratorSupervisor['snapshot']>;
};

export class FallbackModel implements PlacedModel {
  readonly lane: string;
  readonly inputs;
  readonly outputs;
  readonly #mutex = new Mutex();
  readonly #fallbacks = new ReasonCounts();
  readonly #unsubscribe: () => void;
  #primary: PreparedModel | undefined;
  /** An accelerator run abandoned after a timeout that has not returned yet. */
  #zombie: Promise<unknown> | undefined;
  #demoted: string | undefined;
  #analogRuns = 0;
  #reprograms = 0;
  readonly #runTimeoutMs: number;
  readonly #loadTimeoutMs: number;

  private constructor(
    readonly id: string,
    readonly model: LoadedModel,
    readonly accelerator: Backend,
    readonly supervisor: AcceleratorSupervisor,
    readonly digital: PreparedModel,
    primary: PreparedModel | undefined,
    options: FallbackOptions,
  ) {
    this.lane = supervisor.backend;
    this.inputs = model.inputs;
    this.outputs = model.outputs;
    this.#primary = primary;
    this.#runTimeoutMs = options.runTimeoutMs ?? 2000;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? 30_000;
    this.#unsubscribe = supervisor.onReadmit(() => this.#readmit());
  }

  /**
   * Loads the digital twin and the accelerator model. A model the accelerator cannot take (a
   * ModelError, no free tiles, ...) throws; an accelerator that fails while loading leaves the
   * model degraded, to be loaded on re-admission.
   */
  static async create(id: string, model: LoadedModel, accelerator: Backend, supervisor: AcceleratorSupervisor, digital: PreparedModel, options: FallbackOptions = {}): Promise<FallbackModel> {
    let primary: PreparedModel | undefined;
    try {
      primary = await loadWithin(accelerator, model, options.loadTimeoutMs ?? 30_000, `loading ${id} onto ${supervisor.backend}`);
    } catch (e) {
      if (!(e instanceof AcceleratorError)) throw e;
      supervisor.reportFailure(e.kind, `loading ${id}: ${e.message}`);
    }
    return new FallbackModel(id, model, accelerator, supervisor, digital, primary, options);
  }

  /** The accelerator-side prepared model (for the accuracy guard), if loaded. */
  get primary(): PreparedModel | undefined {
    return this.#primary;
  }

  get demoted(): string | undefined {
    return this.#demoted;
  }

  async run(feeds: Feeds): Promise<PlacedRun> {
    const skip = this.#skipReason();
    if (skip) return this.#fallback(feeds, skip);
    let failure: { kind: FailureKind; message: string } | undefined;
    const run = await this.#mutex.run(async () => {
      const primary = this.#primary;
      const again = this.#skipReason();
      if (again || !primary) return undefined;
      const attempt = primary.run(feeds);
      try {
        return await withTimeout(attempt, this.#runTimeoutMs, `${this.id} on ${this.lane}`);
      } catch (e) {
        if (e instanceof ModelError) throw e; // the feeds are wrong: digital would refuse them too
        if (failureKind(e) === 'timeout') {
          const zombie: Promise<unknown> = attempt.then(() => undefined, () => undefined).finally(() => { if (this.#zombie === zombie) this.#zombie = undefined; });
          this.#zombie = zombie;
        }
        failure = { kind: failureKind(e), message: failureMessage(e) };
        return undefined;
      }
    });
    if (run) {
      this.#analogRuns++;
      return { outputs: run, backend: 'analog' };
    }
    if (failure) {
      this.supervisor.reportFailure(failure.kind, `${this.id}: ${failure.message}`);
      return this.#fallback(feeds, failure.kind);
    }
    return this.#fallback(feeds, this.#skipReason() ?? 'not-loaded');
  }

  /**
   * Runs `fn` on the accelerator model with no request in between (guard canaries, calibration).
   * Undefined when the accelerator is not serving.
   */
  async withPrimary<T>(fn: (primary: PreparedModel) => Promise<T>): Promise<T | undefined> {
    return this.#mutex.run(async () => (this.#primary && !this.#zombie && this.supervisor.healthy ? fn(this.#primary) : undefined));
  }

  /** Swaps in a re-built accelerator model (e.g. with layers demoted to digital); disposes the old one. */
  async replacePrimary(next: PreparedModel): Promise<void> {
    const old = await this.#mutex.run(async () => { const o = this.#primary; this.#primary = next; return o; });
    if (old && old !== next) await old.dispose();
  }

  /** The accuracy guard moves the whole model to digital (requests report `digital-fallback`, reason 'demoted'). */
  demote(reason: string): void {
    this.#demoted = reason;
  }

  promote(): void {
    this.#demoted = undefined;
  }

  snapshot(): FallbackSnapshot {
    return {
      id: this.id, placement: 'accelerator', backend: this.lane,
      state: this.#demoted ? 'demoted' : this.supervisor.healthy && this.#primary ? 'serving' : 'degraded',
      ...(this.#demoted ? { demotedReason: this.#demoted } : {}),
      loaded: !!this.#primary, analogRuns: this.#analogRuns, fallbacks: this.#fallbacks.toJSON(), reprograms: this.#reprograms,
      accelerator: this.supervisor.snapshot(),
    };
  }

  async dispose(): Promise<void> {
    this.#unsubscribe();
    const primary = this.#primary;
    this.#primary = undefined;
    await Promise.all([primary?.dispose().catch(() => undefined), this.digital.dispose()]);
  }

  #skipReason(): string | undefined {
    if (this.#demoted) return 'demoted';
    if (!this.supervisor.healthy) return `degraded:${this.supervisor.reason ?? 'unknown'}`;
    if (this.#zombie) return 'degraded:timeout';
    if (!this.#primary) return 'not-loaded';
    return undefined;
  }

  async #fallback(feeds: Feeds, reason: string): Promise<PlacedRun> {
    this.#fallbacks.add(reason);
    return { outputs: await this.digital.run(feeds), backend: 'digital-fallback', fallbackReason: reason };
  }

  /** Before the accelerator serves again: let an abandoned run finish, then (re-)program the tiles. */
  async #readmit(): Promise<void> {
    if (this.#zombie) await this.#zombie;
    await this.#mutex.run(async () => {
      if (!this.#primary) {
        this.#primary = await loadWithin(this.accelerator, this.model, this.#loadTimeoutMs, `loading ${this.id}`);
      } else if (canReprogram(this.#primary)) {
        await this.#primary.reprogram();
      } else {
        const old = this.#primary;
        this.#primary = undefined;
        await old.dispose().catch(() => undefined);
        this.#primary = await loadWithin(this.accelerator, this.model, this.#loadTimeoutMs, `re-loading ${this.id}`);
      }
      this.#reprograms++;
    });
  }
}

/** Loads with a time limit; a load that finishes after it is disposed rather than leaked. */
async function loadWithin(backend: Backend, model: LoadedModel, ms: number, what: string): Promise<PreparedModel> {
  const loading = backend.load(model);
  try {
    return await withTimeout(loading, ms, what);
  } catch (e) {
    loading.then((late) => late.dispose(), () => undefined).catch(() => undefined);
    throw e;
  }
}
