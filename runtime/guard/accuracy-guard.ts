/**
 * The accuracy guard: runs a small canary set on the accelerator now and then and compares it with
 * the digital reference. When agreement or output similarity falls below the low threshold it
 * escalates, one step at a time, until both are back above the high threshold (hysteresis: a
 * model hovering just under "high" is left alone until it falls below "low"):
 *
 *   1. re-calibrate drift compensation   (cheap: one calibration read per tile)
 *   2. re-program the tiles              (undoes drift; the device age restarts)
 *   3. demote the worst layers to digital, one at a time, worst first (never the last one)
 *   4. demote the whole model to digital
 *
 * Every step is an 'escalation' event with the figures before and after it; every check is a
 * 'check' event. A demoted model is re-tried (re-programmed and measured) every `promoteEvery`
 * checks and promoted back when it passes.
 */
import { EventEmitter } from 'node:events';
import type { Dataset } from '../dataset.js';
import type { Feeds } from '../model/feeds.js';
import type { TensorData } from '../model/tensor.js';
import { monotonicClock, type Clock } from '../ports.js';
import { canaryFeeds, compareOutputs, type CanaryFigures } from './canary.js';
import type { GuardTarget } from './target.js';

export interface GuardThresholds {
  agreementLow: number;
  agreementHigh: number;
  cosineLow: number;
  cosineHigh: number;
}

export const DEFAULT_THRESHOLDS: GuardThresholds = { agreementLow: 0.85, agreementHigh: 0.9, cosineLow: 0.95, cosineHigh: 0.97 };

export interface GuardOptions {
  canary: Dataset;
  thresholds?: Partial<GuardThresholds>;
  /** Layers demoted one by one before the whole model is (default: every analog layer). */
  maxLayerDemotions?: number;
  /** While demoted, try the accelerator again every this many checks (0: never). */
  promoteEvery?: number;
  clock?: Clock;
}

export type GuardStep = 'recalibrate' | 'reprogram' | 'demote-layer' | 'demote-model' | 'promote-model';

export interface GuardEvent {
  model: string;
  step: GuardStep;
  before: CanaryFigures;
  after: CanaryFigures;
  /** The step brought both figures to the high threshold. */
  restored: boolean;
  layer?: string;
  layerError?: number;
  at: number;
}

export type GuardState = 'ok' | 'demoted' | 'skipped';

export interface CheckReport {
  model: string;
  at: number;
  state: GuardState;
  /** Measured at the start of the check (each step carries its own before/after). */
  figures?: CanaryFigures;
  /** Why the check did not measure (accelerator degraded, ...). */
  skipped?: string;
  steps: GuardEvent[];
}

export interface GuardSnapshot {
  model: string;
  state: GuardState;
  thresholds: GuardThresholds;
  checks: number;
  last?: CanaryFigures;
  lastCheckAt?: number;
  escalations: Record<string, number>;
  demotedLayers: readonly string[];
  demotedReason?: string;
}

export interface AccuracyGuard {
  on(event: 'check', listener: (r: CheckReport) => void): this;
  on(event: 'escalation', listener: (e: GuardEvent) => void): this;
}

export class AccuracyGuard extends EventEmitter {
  readonly thresholds: GuardThresholds;
  readonly #clock: Clock;
  readonly #maxLayerDemotions: number;
  readonly #promoteEvery: number;
  readonly #feeds: Feeds;
  readonly #output: string;
  #reference: TensorData | undefined;
  #state: GuardState = 'ok';
  #demotedReason: string | undefined;
  #checks = 0;
  #checksWhileDemoted = 0;
  #last: CanaryFigures | undefined;
  #lastAt: number | undefined;
  readonly #escalations = new Map<GuardStep, number>();
  #running: Promise<CheckReport> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly target: GuardTarget, options: GuardOptions & { input: string; output: string }) {
    super();
    this.thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
    const t = this.thresholds;
    if (!(t.agreementLow <= t.agreementHigh && t.cosineLow <= t.cosineHigh)) throw new Error('guard thresholds: each low must not exceed its high');
    this.#clock = options.clock ?? monotonicClock;
    this.#maxLayerDemotions = options.maxLayerDemotions ?? Infinity;
    this.#promoteEvery = options.promoteEvery ?? 10;
    this.#feeds = canaryFeeds(options.canary, options.input);
    this.#output = options.output;
  }

  /** One check (and escalation if needed); concurrent calls share the one in progress. */
  check(): Promise<CheckReport> {
    this.#running ??= this.#check().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  /** Checks every `intervalMs` until stop(); errors are reported as skipped checks. */
  start(intervalMs: number): void {
    this.stop();
    const tick = (): void => {
      this.#timer = setTimeout(() => { void this.check().catch(() => undefined).finally(() => { if (this.#timer) tick(); }); }, intervalMs);
      this.#timer.unref?.();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  snapshot(): GuardSnapshot {
    return {
      model: this.target.id, state: this.#state, thresholds: this.thresholds, checks: this.#checks,
      ...(this.#last ? { last: this.#last, lastCheckAt: this.#lastAt } : {}),
      escalations: Object.fromEntries(this.#escalations), demotedLayers: [...this.target.demotedLayers()],
      ...(this.#demotedReason ? { demotedReason: this.#demotedReason } : {}),
    };
  }

  async #check(): Promise<CheckReport> {
    this.#checks++;
    const at = this.#clock.now();
    const report = (r: Omit<CheckReport, 'model' | 'at'>): CheckReport => {
      const full = { model: this.target.id, at, ...r };
      this.emit('check', full);
      return full;
    };
    const figures = await this.#measure();
    if (!figures) return report({ state: 'skipped', skipped: 'accelerator unavailable (degraded)', steps: [] });
    this.#last = figures;
    this.#lastAt = at;
    if (this.#state !== 'demoted' && !this.#below(figures)) return report({ state: 'ok', figures, steps: [] });
    const steps = this.#state === 'demoted' ? await this.#maybePromote(figures) : await this.#escalate(figures);
    return report({ state: this.#state, figures, steps });
  }

  async #escalate(start: CanaryFigures): Promise<GuardEvent[]> {
    const steps: GuardEvent[] = [];
    let before = start;
    const step = async (name: GuardStep, action: () => Promise<void>, extra: Partial<GuardEvent> = {}): Promise<boolean> => {
      await action();
      const after = (await this.#measure()) ?? before;
      const event: GuardEvent = { model: this.target.id, step: name, before, after, restored: this.#restored(after), ...extra, at: this.#clock.now() };
      steps.push(event);
      this.#escalations.set(name, (this.#escalations.get(name) ?? 0) + 1);
      this.emit('escalation', event);
      before = after;
      this.#last = after;
      return event.restored;
    };
    if (await step('recalibrate', () => this.target.recalibrate())) return steps;
    if (await step('reprogram', () => this.target.reprogram())) return steps;
    for (let demoted = 0; demoted < this.#maxLayerDemotions; demoted++) {
      const ranked = await this.target.rankLayers(this.#feeds);
      // Demoting the last analog layer would be demoting the model, under another name.
      const worst = ranked.length > 1 ? ranked[0] : undefined;
      if (!worst) break;
      if (await step('demote-layer', () => this.target.demoteLayers([worst.name]), { layer: worst.name, layerError: worst.error })) return steps;
    }
    const reason = `canary agreement ${fmt(before.agreement)}, cosine ${fmt(before.cosine, 4)} after ${steps.length} steps`;
    this.target.demoteModel(reason);
    this.#state = 'demoted';
    this.#demotedReason = reason;
    this.#checksWhileDemoted = 0;
    // Served digitally now: the reference itself.
    const event: GuardEvent = { model: this.target.id, step: 'demote-model', before, after: { agreement: 1, cosine: 1 }, restored: true, at: this.#clock.now() };
    steps.push(event);
    this.#escalations.set('demote-model', (this.#escalations.get('demote-model') ?? 0) + 1);
    this.emit('escalation', event);
    return steps;
  }

  /** While demoted: now and then re-program, measure, and promote back if it passes. */
  async #maybePromote(figures: CanaryFigures): Promise<GuardEvent[]> {
    if (!this.#promoteEvery || ++this.#checksWhileDemoted < this.#promoteEvery) return [];
    this.#checksWhileDemoted = 0;
    await this.target.reprogram();
    const after = (await this.#measure()) ?? figures;
    const restored = this.#restored(after);
    const event: GuardEvent = { model: this.target.id, step: 'promote-model', before: figures, after, restored, at: this.#clock.now() };
    this.#escalations.set('promote-model', (this.#escalations.get('promote-model') ?? 0) + 1);
    this.emit('escalation', event);
    if (restored) {
      this.target.promoteModel();
      this.#state = 'ok';
      this.#demotedReason = undefined;
    }
    return [event];
  }

  async #measure(): Promise<CanaryFigures | undefined> {
    if (!this.target.available()) return undefined;
    const out = await this.target.runAccelerator(this.#feeds);
    if (!out) return undefined;
    this.#reference ??= (await this.target.runReference(this.#feeds))[this.#output];
    const candidate = out[this.#output];
    if (!this.#reference || !candidate) throw new Error(`canary: model has no output '${this.#output}'`);
    return compareOutputs(this.#reference, candidate);
  }

  #below(f: CanaryFigures): boolean {
    return f.agreement < this.thresholds.agreementLow || f.cosine < this.thresholds.cosineLow;
  }

  #restored(f: CanaryFigures): boolean {
    return f.agreement >= this.thresholds.agreementHigh && f.cosine >= this.thresholds.cosineHigh;
  }
}

const fmt = (x: number, d = 3): string => x.toFixed(d);
