/**
 * Health of one accelerator backend as the fallback logic sees it. Any failure on a request path
 * (or an `unhealthy` report from the periodic health check) marks it degraded; from then on it is
 * probed with exponential backoff, and when a probe finds it healthy the registered re-admission
 * work runs (re-programming tiles the device may have lost) before it takes requests again.
 */
import type { AcceleratorHealth } from '../accelerator.js';
import { monotonicClock, type Clock } from '../ports.js';
import { failureKind, failureMessage, withTimeout, type FailureKind } from './failure.js';
import { ReasonCounts } from './metrics.js';

export interface SupervisorOptions {
  clock?: Clock;
  /** Health check while healthy, every this many ms (0: only probe when degraded). */
  healthIntervalMs?: number;
  /** A health check or probe that takes longer counts as a timeout. */
  healthTimeoutMs?: number;
  /** First probe after a failure, growth factor and ceiling of the backoff (ms). */
  probeInitialMs?: number;
  probeFactor?: number;
  probeMaxMs?: number;
  /** Longest re-admission (re-programming) allowed before the probe counts as failed. */
  readmitTimeoutMs?: number;
}

export interface SupervisorSnapshot {
  backend: string;
  state: 'healthy' | 'degraded';
  /** Why it is degraded (the failure kind) and what happened. */
  reason?: FailureKind;
  detail?: string;
  /** Clock time of the last state change. */
  since: number;
  /** Failures seen, by kind. */
  failures: Record<string, number>;
  probes: number;
  readmissions: number;
  /** Delay before the next probe (ms), while degraded. */
  nextProbeMs?: number;
  lastHealth?: AcceleratorHealth;
}

type ReadmitHook = () => Promise<void>;

export class AcceleratorSupervisor {
  readonly #clock: Clock;
  readonly #o: Required<Omit<SupervisorOptions, 'clock'>>;
  #state: 'healthy' | 'degraded' = 'healthy';
  #reason: FailureKind | undefined;
  #detail: string | undefined;
  #since: number;
  #backoff: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probing = false;
  #stopped = false;
  #probes = 0;
  #readmissions = 0;
  #lastHealth: AcceleratorHealth | undefined;
  readonly #failures = new ReasonCounts();
  readonly #hooks = new Set<ReadmitHook>();
  readonly #listeners = new Set<(s: SupervisorSnapshot) => void>();

  constructor(readonly backend: string, private readonly target: { health(): Promise<AcceleratorHealth> }, options: SupervisorOptions = {}) {
    this.#clock = options.clock ?? monotonicClock;
    this.#o = {
      healthIntervalMs: options.healthIntervalMs ?? 1000, healthTimeoutMs: options.healthTimeoutMs ?? 1000,
      probeInitialMs: options.probeInitialMs ?? 100, probeFactor: options.probeFactor ?? 2, probeMaxMs: options.probeMaxMs ?? 10_000,
      readmitTimeoutMs: options.readmitTimeoutMs ?? 30_000,
    };
    this.#since = this.#clock.now();
    this.#backoff = this.#o.probeInitialMs;
    this.#scheduleHealthCheck();
  }

  get healthy(): boolean {
    return this.#state === 'healthy';
  }

  get reason(): FailureKind | undefined {
    return this.#reason;
  }

  /** Work to redo before the accelerator takes requests again (e.g. re-program a model's tiles). */
  onReadmit(hook: ReadmitHook): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  /** Called on every state change (for telemetry events). */
  onChange(listener: (s: SupervisorSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A request path saw the accelerator fail: degrade (once) and start probing. */
  reportFailure(kind: FailureKind, detail: string): void {
    this.#failures.add(kind);
    if (this.#stopped || this.#state === 'degraded') return;
    this.#state = 'degraded';
    this.#reason = kind;
    this.#detail = detail;
    this.#since = this.#clock.now();
    this.#backoff = this.#o.probeInitialMs;
    this.#schedule(this.#backoff, () => this.#probe());
    this.#emit();
  }

  snapshot(): SupervisorSnapshot {
    return {
      backend: this.backend, state: this.#state, since: this.#since, failures: this.#failures.toJSON(), probes: this.#probes, readmissions: this.#readmissions,
      ...(this.#reason ? { reason: this.#reason, detail: this.#detail } : {}),
      ...(this.#state === 'degraded' ? { nextProbeMs: this.#backoff } : {}),
      ...(this.#lastHealth ? { lastHealth: this.#lastHealth } : {}),
    };
  }

  /** Runs a probe now instead of waiting for the backoff (e.g. an operator command). */
  async probeNow(): Promise<boolean> {
    if (this.#state === 'healthy') return true;
    clearTimeout(this.#timer);
    await this.#probe();
    return this.healthy;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    this.#probing = true;
    this.#probes++;
    try {
      const health = await this.#checkHealth();
      if (health.state === 'unhealthy') throw Object.assign(new Error(health.detail ?? 'device reports unhealthy'), { unhealthy: true });
      for (const hook of [...this.#hooks]) await withTimeout(hook(), this.#o.readmitTimeoutMs, 're-admission');
      if (this.#stopped) return;
      this.#state = 'healthy';
      this.#reason = undefined;
      this.#detail = undefined;
      this.#since = this.#clock.now();
      this.#readmissions++;
      this.#backoff = this.#o.probeInitialMs;
      this.#emit();
      this.#scheduleHealthCheck();
    } catch (e) {
      this.#detail = `probe ${this.#probes} failed: ${failureMessage(e)}`;
      this.#backoff = Math.min(this.#o.probeMaxMs, this.#backoff * this.#o.probeFactor);
      this.#schedule(this.#backoff, () => this.#probe());
    } finally {
      this.#probing = false;
    }
  }

  async #checkHealth(): Promise<AcceleratorHealth> {
    const health = await withTimeout(this.target.health(), this.#o.healthTimeoutMs, 'health check');
    this.#lastHealth = health;
    return health;
  }

  #scheduleHealthCheck(): void {
    if (!this.#o.healthIntervalMs) return;
    this.#schedule(this.#o.healthIntervalMs, async () => {
      if (this.#state !== 'healthy') return;
      try {
        const health = await this.#checkHealth();
        if (health.state === 'unhealthy') this.reportFailure('unhealthy', health.detail ?? 'device reports unhealthy');
      } catch (e) {
        this.reportFailure(failureKind(e), `health check: ${failureMessage(e)}`);
      }
      if (this.#state === 'healthy') this.#scheduleHealthCheck();
    });
  }

  #schedule(ms: number, fn: () => unknown): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => { void fn(); }, ms);
    this.#timer.unref?.();
  }

  #emit(): void {
    const s = this.snapshot();
    for (const l of this.#listeners) l(s);
  }
}
