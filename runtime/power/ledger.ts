/**
 * Modelled energy accounting: every inference's estimate (and every programming of the array) is
 * recorded with its time; totals by component, by model and over a sliding window feed telemetry
 * (snapshot()) and the governor. Measured energy, where a sensor exists, sits beside it.
 */
import type { Clock } from './clock.js';
import { ZERO_BREAKDOWN, type EnergyBreakdown } from './energy-model.js';
import type { PowerMeter } from './power-meter.js';
import { SlidingWindow } from './sliding-window.js';

export interface EnergyEstimate {
  /** Modelled joules of this inference (or batch). */
  joules: number;
  breakdown: EnergyBreakdown;
}

export interface RecordOptions {
  model?: string;
  /** Inferences this breakdown stands for (a batch, or a simulation step). */
  count?: number;
}

export interface EnergySnapshot {
  inferences: number;
  /** Modelled energy of inference and programming since the ledger started. */
  modelledJ: number;
  perInferenceJ: number;
  /** Totals by component; `programming` holds both amortised shares and recorded programming. */
  breakdownJ: EnergyBreakdown;
  byModel: Record<string, { inferences: number; joules: number }>;
  windowS: number;
  /** Modelled inference power over the window. */
  windowW: number;
  /** Measured side by side, when a sensor feeds a meter: it includes idle and the rest of the board. */
  measured?: {
    joules: number;
    windowW: number;
    sensor?: string;
    /** Modelled inference power over the window plus the idle power assumed for the board. */
    modelledWindowW?: number;
    /** measured / modelled over the window. */
    ratio?: number;
  };
}

export class EnergyLedger {
  #inferences = 0;
  readonly #total: EnergyBreakdown = { ...ZERO_BREAKDOWN };
  readonly #byModel = new Map<string, { inferences: number; joules: number }>();
  readonly #window: SlidingWindow;
  readonly #startedMs: number;

  constructor(private readonly clock: Clock, options: { windowMs?: number } = {}) {
    this.#window = new SlidingWindow(options.windowMs ?? 60_000);
    this.#startedMs = clock.now();
  }

  record(breakdown: EnergyBreakdown, options: RecordOptions = {}): EnergyEstimate {
    const count = options.count ?? 1;
    this.#inferences += count;
    addInto(this.#total, breakdown, count);
    this.#window.add(this.clock.now(), breakdown.total * count);
    if (options.model !== undefined) {
      const m = this.#byModel.get(options.model) ?? { inferences: 0, joules: 0 };
      m.inferences += count;
      m.joules += breakdown.total * count;
      this.#byModel.set(options.model, m);
    }
    return { joules: breakdown.total, breakdown };
  }

  /** Energy of (re)programming or calibrating the array, when it happens; inference breakdowns then carry none. */
  recordProgramming(joules: number): void {
    this.#total.programming += joules;
    this.#total.total += joules;
    this.#window.add(this.clock.now(), joules);
  }

  get inferences(): number {
    return this.#inferences;
  }

  get totalJ(): number {
    return this.#total.total;
  }

  /** Modelled energy in the window ending now. */
  windowJ(now = this.clock.now()): number {
    return this.#window.sum(now);
  }

  get windowMs(): number {
    return this.#window.windowMs;
  }

  snapshot(meter?: PowerMeter, idleModelW?: number): EnergySnapshot {
    const now = this.clock.now();
    const snap: EnergySnapshot = {
      inferences: this.#inferences,
      modelledJ: this.#total.total,
      perInferenceJ: this.#inferences ? this.#total.total / this.#inferences : 0,
      breakdownJ: { ...this.#total },
      byModel: Object.fromEntries(this.#byModel),
      windowS: this.#window.windowMs / 1000,
      windowW: this.windowJ(now) / (Math.min(this.#window.windowMs, Math.max(now - this.#startedMs, 1)) / 1000),
    };
    if (meter?.hasData) {
      const windowW = meter.windowWatts(now);
      const measured: NonNullable<EnergySnapshot['measured']> = { joules: meter.joules, windowW, sensor: meter.sensor };
      if (idleModelW !== undefined) {
        measured.modelledWindowW = snap.windowW + idleModelW;
        if (measured.modelledWindowW > 0) measured.ratio = windowW / measured.modelledWindowW;
      }
      snap.measured = measured;
    }
    return snap;
  }
}

/** In place and allocation-free: record() runs once per inference. */
function addInto(t: EnergyBreakdown, b: EnergyBreakdown, n: number): void {
  t.analogMac += b.analogMac * n;
  t.dac += b.dac * n;
  t.adc += b.adc * n;
  t.digitalMac += b.digitalMac * n;
  t.digitalOp += b.digitalOp * n;
  t.sram += b.sram * n;
  t.dram += b.dram * n;
  t.periphery += b.periphery * n;
  t.programming += b.programming * n;
  t.total += b.total * n;
}
