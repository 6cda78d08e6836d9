/**
 * The power governor. On every tick it turns the policy's limits (average power cap, energy budget,
 * battery reserve, thermal limit) into one allowed inference power, plans the streams' power with the
 * energy model, and takes steps down the degradation ladder until the plan fits, or undoes one step
 * when the plan fits with room to spare. Hysteresis keeps it from oscillating: a margin and a hold
 * time on the way back up, planned against the largest unmodelled draw seen recently. Every decision
 * is an event carrying its reason and the numbers behind it.
 *
 * Planned power = idle + bias + Σ served streams rate × energy/inference(model, placement, ADC bits).
 * `bias` learns what the model misses (the rest of the board) from measured minus modelled power
 * over the window, when a sensor feeds the meter.
 */
import type { Clock } from './clock.js';
import type { GovernedStream, GovernedSystem } from './governed-system.js';
import { applyStep, candidateSteps, describeStep, inferenceWatts, performStep, stepToUndo, type Knobs, type Step } from './governor-steps.js';
import type { InferenceCosts } from './inference-costs.js';
import type { EnergyLedger } from './ledger.js';
import { EnergySpent } from './energy-spent.js';
import { tightestLimit, type DecisionNumbers, type LimitNumbers, type LimitReason } from './governor-limits.js';
import { mergePolicy, type ActionKind, type GovernorPolicy, type GovernorPolicyInput } from './policy.js';
import type { PowerMeter } from './power-meter.js';
import { SlidingMax } from './sliding-window.js';
import type { Placement } from './work.js';

export type { DecisionNumbers, LimitReason } from './governor-limits.js';

export type GovernorEvent =
  | { type: 'decision'; at: number; direction: 'down' | 'up'; step: Step; action: string; reason: LimitReason; numbers: DecisionNumbers; skipped?: { action: string; savingW: number }[] }
  | { type: 'exhausted'; at: number; reason: LimitReason; numbers: DecisionNumbers }
  | { type: 'action-failed'; at: number; step: Step; action: string; error: string }
  | { type: 'policy'; at: number; origin: string; policy: GovernorPolicy };

export interface GovernorOptions {
  system: GovernedSystem;
  costs: InferenceCosts;
  clock: Clock;
  streams: GovernedStream[];
  policy?: GovernorPolicyInput;
  /** Where each model runs at start (default: analog where it is cheaper and possible, else digital). */
  placements?: Record<string, Placement>;
  /** ADC resolution at start; undefined when there is no analog device. */
  adcBits?: number;
  /** Board power with no inference, the model's starting guess (a sensor corrects it). */
  idleW?: number;
  /** Modelled inference energy, for the bias against measured power and for budgets without a sensor. */
  ledger?: EnergyLedger;
  /** Measured power and battery, fed by a PowerSensor's readings. */
  meter?: PowerMeter;
}

export interface GovernorStatus {
  enabled: boolean;
  reason?: LimitReason;
  allowedW: number;
  plannedW: number;
  idleW: number;
  biasW: number;
  adcBits?: number;
  placements: Record<string, Placement>;
  rates: Record<string, number>;
  shed: string[];
  paused: boolean;
  steps: string[];
  decisions: number;
  directionChanges: number;
}

const MAX_STEPS_PER_TICK = 64;
const NOTHING: Promise<GovernorEvent[]> = Promise.resolve(Object.freeze([]) as unknown as GovernorEvent[]);

export class Governor {
  #policy: GovernorPolicy;
  #knobs: Knobs;
  #streams: GovernedStream[];
  readonly #applied: Step[] = [];
  readonly #listeners = new Set<(e: GovernorEvent) => void>();
  readonly #disabled = new Set<ActionKind>();
  readonly #startMs: number;
  #lastDownMs = -Infinity;
  #lastDirection: 'down' | 'up' | undefined;
  #decisions = 0;
  #directionChanges = 0;
  #biasW = 0;
  /** The peak a step up must still fit (null until the horizon is known). */
  #biasPeak: SlidingMax | undefined;
  #biasAt: number | undefined;
  #lastTickMs = -Infinity;
  #exhausted = false;
  #thermalHot = false;
  readonly #spent: EnergySpent;
  #last: { allowedW: number; plannedW: number; reason?: LimitReason } = { allowedW: Infinity, plannedW: 0 };

  constructor(private readonly options: GovernorOptions) {
    this.#policy = mergePolicy(undefined, options.policy ?? {}, 'config');
    this.#streams = [...options.streams];
    this.#startMs = options.clock.now();
    this.#spent = new EnergySpent(this.#startMs, options);
    const bits = options.adcBits;
    const placements = new Map<string, Placement>();
    for (const s of options.streams) {
      const given = options.placements?.[s.model];
      const analogCheaper = options.costs.joules(s.model, 'analog', bits ?? 8) < options.costs.joules(s.model, 'digital', bits ?? 8);
      placements.set(s.model, given ?? (analogCheaper ? 'analog' : 'digital'));
    }
    this.#knobs = { adcBits: bits, placements, rates: new Map(options.streams.map((s) => [s.id, s.rateHz])), shed: new Set(), paused: false };
  }

  get policy(): GovernorPolicy {
    return this.#policy;
  }

  /** Replaces parts of the policy (from a command); throws PolicyError and changes nothing if invalid. */
  setPolicy(change: GovernorPolicyInput, origin = 'command'): GovernorPolicy {
    this.#policy = mergePolicy(this.#policy, change, origin);
    this.#disabled.clear();
    this.#exhausted = false;
    this.#lastTickMs = -Infinity;
    this.#emit({ type: 'policy', at: this.options.clock.now(), origin, policy: this.#policy });
    return this.#policy;
  }

  /** Streams come and go with the scheduler; new ones start at their nominal rate. */
  setStreams(streams: GovernedStream[]): void {
    this.#streams = [...streams];
    const rates = new Map(this.#knobs.rates);
    for (const s of streams) if (!rates.has(s.id)) rates.set(s.id, s.rateHz);
    const placements = new Map(this.#knobs.placements);
    for (const s of streams) if (!placements.has(s.model)) placements.set(s.model, 'digital');
    this.#knobs = { ...this.#knobs, rates, placements };
  }

  on(listener: (e: GovernorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * One control step. Cheap to call after every inference: it re-plans at most once per policy.tickS
   * (`force` re-plans now, e.g. after a command or a new sensor reading).
   */
  tick(force = false): Promise<GovernorEvent[]> {
    if (!this.#policy.enabled) return NOTHING;
    const now = this.options.clock.now();
    // Not due: no promise or array allocated, so calling after every inference stays free.
    if (!force && now - this.#lastTickMs < this.#policy.tickS * 1000) return NOTHING;
    this.#lastTickMs = now;
    return this.#replan(now);
  }

  async #replan(now: number): Promise<GovernorEvent[]> {
    const events: GovernorEvent[] = [];
    const emit = (e: GovernorEvent): void => {
      events.push(e);
      this.#emit(e);
    };
    this.#spent.update(now, this.#policy.energyBudget?.periodS);
    this.#learnBias(now);
    const limit = this.#limit(now);
    const plan = (k: Knobs): number => inferenceWatts(k, this.#streams, this.options.costs);
    const numbers = (planned: number, after: number): DecisionNumbers => ({ ...limit.numbers, plannedW: planned, plannedAfterW: after });
    let planned = plan(this.#knobs);
    this.#last = { allowedW: limit.allowedW, plannedW: planned, reason: limit.reason };

    const hot = this.#thermal(limit.numbers.celsius);
    const holdMs = (this.#policy.holdS ?? this.#policy.windowS) * 1000;
    const thermalStepDue = hot && now - this.#lastDownMs >= holdMs;
    if (planned > limit.allowedW || thermalStepDue) {
      const reason: LimitReason = planned > limit.allowedW ? limit.reason : 'thermal';
      // Down: as many steps as it takes now (one for a thermal limit, whose effect shows slowly).
      for (let i = 0; i < MAX_STEPS_PER_TICK && (planned > limit.allowedW || (reason === 'thermal' && i === 0)); i++) {
        const skipped: { action: string; savingW: number }[] = [];
        let chosen: { step: Step; after: number } | undefined;
        let candidates = candidateSteps(this.#knobs, this.#streams, this.options.costs, this.#policy, this.#disabled);
        // Nothing may run (reserve reached, budget spent): go straight to the last resort.
        if (limit.allowedW === 0 && candidates.some((c) => c.kind === 'pause')) candidates = [{ kind: 'pause' }];
        for (const step of candidates) {
          const after = plan(applyStep(this.#knobs, step));
          const saving = planned - after;
          if (saving > this.#policy.minSaving * planned && saving > 0) {
            chosen = { step, after };
            break;
          }
          skipped.push({ action: describeStep(step), savingW: saving });
        }
        if (!chosen) {
          if (!this.#exhausted) emit({ type: 'exhausted', at: now, reason, numbers: numbers(planned, planned) });
          this.#exhausted = true;
          break;
        }
        if (!(await this.#perform(chosen.step, false, now, emit))) continue;
        this.#applied.push(chosen.step);
        this.#decided('down', now);
        emit({ type: 'decision', at: now, direction: 'down', step: chosen.step, action: describeStep(chosen.step), reason, numbers: numbers(planned, chosen.after), ...(skipped.length ? { skipped } : {}) });
        planned = chosen.after;
      }
      this.#last.plannedW = planned;
      return events;
    }
    this.#exhausted = false;

    // Up: undo one step if the plan still fits with the hysteresis margin, after the hold time, with
    // the largest unmodelled draw seen recently (a radio that just went quiet will transmit again).
    const undoAt = stepToUndo(this.#applied, this.#policy);
    const top = this.#applied[undoAt];
    const coolEnough = limit.numbers.celsius === undefined || this.#policy.thermalLimitC === undefined
      || limit.numbers.celsius <= this.#policy.thermalLimitC - this.#policy.thermalHysteresisC;
    if (top && coolEnough && now - this.#lastDownMs >= holdMs) {
      const after = plan(applyStep(this.#knobs, top, true));
      const allowedUp = this.#allowed(limit.numbers.limitW, this.#peakBias(now));
      if (after <= allowedUp * (1 - this.#policy.hysteresis) && (await this.#perform(top, true, now, emit))) {
        this.#applied.splice(undoAt, 1);
        this.#decided('up', now);
        emit({ type: 'decision', at: now, direction: 'up', step: top, action: describeStep(top, true), reason: 'headroom', numbers: numbers(planned, after) });
        this.#last.plannedW = after;
      }
    }
    return events;
  }

  status(): GovernorStatus {
    const k = this.#knobs;
    return {
      enabled: this.#policy.enabled,
      reason: this.#last.reason,
      allowedW: this.#last.allowedW,
      plannedW: this.#last.plannedW,
      idleW: this.options.idleW ?? 0,
      biasW: this.#biasW,
      adcBits: k.adcBits,
      placements: Object.fromEntries(k.placements),
      rates: Object.fromEntries(k.rates),
      shed: [...k.shed],
      paused: k.paused,
      steps: this.#applied.map((s) => describeStep(s)),
      decisions: this.#decisions,
      directionChanges: this.#directionChanges,
    };
  }

  async #perform(step: Step, undo: boolean, now: number, emit: (e: GovernorEvent) => void): Promise<boolean> {
    try {
      await performStep(this.options.system, step, undo);
    } catch (e) {
      this.#disabled.add(step.kind);
      emit({ type: 'action-failed', at: now, step, action: describeStep(step, undo), error: (e as Error).message });
      return false;
    }
    this.#knobs = applyStep(this.#knobs, step, undo);
    return true;
  }

  #decided(direction: 'down' | 'up', now: number): void {
    this.#decisions++;
    if (this.#lastDirection && this.#lastDirection !== direction) this.#directionChanges++;
    this.#lastDirection = direction;
    if (direction === 'down') this.#lastDownMs = now;
  }

  #thermal(celsius: number | undefined): boolean {
    const limit = this.#policy.thermalLimitC;
    if (limit === undefined || celsius === undefined) return (this.#thermalHot = false);
    if (celsius > limit) this.#thermalHot = true;
    else if (celsius <= limit - this.#policy.thermalHysteresisC) this.#thermalHot = false;
    return this.#thermalHot && celsius > limit;
  }

  #learnBias(now: number): void {
    const { meter, ledger } = this.options;
    if (!meter?.hasData || !ledger || meter.coveredMs < ledger.windowMs) return;
    const measured = meter.windowWatts(now);
    const modelled = ledger.windowJ(now) / (ledger.windowMs / 1000) + (this.options.idleW ?? 0);
    // Exponential smoothing in time, so the estimate does not depend on how often tick() runs.
    const dtS = this.#biasAt === undefined ? Infinity : (now - this.#biasAt) / 1000;
    this.#biasAt = now;
    this.#biasW += (1 - Math.exp(-dtS / this.#policy.biasTauS)) * (measured - modelled - this.#biasW);
    const horizon = (this.#policy.peakHoldS ?? 10 * this.#policy.windowS) * 1000;
    if (this.#biasPeak?.windowMs !== horizon) this.#biasPeak = new SlidingMax(horizon);
    this.#biasPeak.add(now, this.#biasW);
  }

  #peakBias(now: number): number {
    return Math.max(this.#biasW, this.#biasPeak?.max(now) ?? -Infinity);
  }

  /** Inference power allowed under a limit: after idle and bias, with the headroom; zero means zero. */
  #allowed(limitW: number | undefined, biasW: number): number {
    if (limitW === undefined) return Infinity;
    if (limitW <= 0) return 0;
    return Math.max((limitW - (this.options.idleW ?? 0) - biasW) * (1 - this.#policy.headroom), 0);
  }

  /** The tightest limit, as allowed inference power (after idle, bias and headroom). */
  #limit(now: number): { allowedW: number; reason: LimitReason; numbers: LimitNumbers & { allowedW: number } } {
    const meter = this.options.meter;
    const t = tightestLimit(this.#policy, {
      elapsedS: (now - this.#startMs) / 1000, spent: this.#spent, reading: meter?.latest,
      idleW: this.options.idleW ?? 0, biasW: this.#biasW, measuredW: meter?.hasData ? meter.windowWatts(now) : undefined,
    });
    const allowedW = this.#allowed(t.watts, this.#biasW);
    return { allowedW, reason: t.reason, numbers: { ...t.numbers, allowedW } };
  }

  #emit(e: GovernorEvent): void {
    for (const l of this.#listeners) l(e);
  }
}
