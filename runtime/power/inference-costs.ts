/**
 * Expected energy per inference of each deployed model, per placement and ADC resolution: what the
 * governor plans with and what bench/energy tabulates. Built from the graphs (expected work) and the
 * energy model; memoised, since the governor asks on every tick.
 */
import type { GraphSummary } from '../model/inspect.js';
import type { EnergyBreakdown, EnergyModel } from './energy-model.js';
import { estimateWork, type InferenceWork, type PeripheryNodes, type Placement, type TileGeometry } from './work.js';

export interface InferenceCosts {
  /** Joules per inference; Infinity where the placement is impossible (no analog device). */
  joules(model: string, placement: Placement, adcBits: number): number;
}

export interface CostTableOptions {
  energy: EnergyModel;
  /** The analog device's tiles; without one only the digital placement exists. */
  tile?: TileGeometry;
  /** DAC resolution of the device (null/Infinity: unquantised). */
  dacBits?: number | null;
  /** Inferences one programming of the weights is expected to serve. */
  amortiseOver?: number;
}

export class InferenceCostTable implements InferenceCosts {
  readonly #work = new Map<string, Partial<Record<Placement, InferenceWork>>>();
  readonly #memo = new Map<string, EnergyBreakdown>();

  constructor(private readonly options: CostTableOptions) {}

  /** `periphery`: the nodes the hybrid plan applies in the device's periphery (HybridModel.peripheryNodes). */
  add(name: string, summary: GraphSummary, periphery?: PeripheryNodes): this {
    const { energy, tile } = this.options;
    this.#work.set(name, {
      digital: estimateWork(summary, 'digital', energy.host),
      ...(tile ? { analog: estimateWork(summary, 'analog', energy.host, tile, periphery) } : {}),
    });
    return this;
  }

  get models(): string[] {
    return [...this.#work.keys()];
  }

  work(name: string, placement: Placement): InferenceWork | undefined {
    return this.#entry(name)[placement];
  }

  breakdown(name: string, placement: Placement, adcBits: number): EnergyBreakdown | undefined {
    const key = `${name}\u0000${placement}\u0000${adcBits}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const work = this.work(name, placement);
    if (!work) return undefined;
    const { energy, dacBits, amortiseOver } = this.options;
    const b = energy.estimate(work, { dac: dacBits, adc: adcBits }, { amortiseOver: amortiseOver ?? 100_000 });
    this.#memo.set(key, b);
    return b;
  }

  joules(name: string, placement: Placement, adcBits: number): number {
    return this.breakdown(name, placement, adcBits)?.total ?? Infinity;
  }

  #entry(name: string): Partial<Record<Placement, InferenceWork>> {
    const e = this.#work.get(name);
    if (!e) throw new Error(`no energy figures for model '${name}'; known: ${this.models.join(', ') || 'none'}`);
    return e;
  }
}
