/**
 * A simulated device under load, in device time: streams ask for inferences at their rates, the
 * served ones cost the energy model's joules per inference (for their model, placement and ADC
 * resolution) and drain the simulated battery; the governor turns its knobs through the
 * GovernedSystem interface. Missions of hours run in milliseconds, for tests and fleet benchmarks.
 */
import type { ManualClock } from '../../runtime/power/clock.js';
import type { GovernedStream, GovernedSystem } from '../../runtime/power/governed-system.js';
import type { InferenceCostTable } from '../../runtime/power/inference-costs.js';
import type { EnergyLedger } from '../../runtime/power/ledger.js';
import type { Placement } from '../../runtime/power/work.js';
import type { SimulatedBattery } from './simulated-battery.js';

export interface SimulatedLoadOptions {
  clock: ManualClock;
  battery: SimulatedBattery;
  costs: InferenceCostTable;
  streams: GovernedStream[];
  placements: Record<string, Placement>;
  adcBits?: number;
  /** Records every served inference's modelled energy, as the runtime would. */
  ledger?: EnergyLedger;
  /** What the runtime's energy model says, when the device really draws `costs` (default: the same). */
  modelledCosts?: InferenceCostTable;
}

interface StreamState { spec: GovernedStream; demandHz: number; capHz: number; shed: boolean; owed: number; served: number; dropped: number }

export class SimulatedLoad implements GovernedSystem {
  readonly #streams = new Map<string, StreamState>();
  readonly placements: Map<string, Placement>;
  adcBits: number | undefined;
  paused = false;

  constructor(private readonly options: SimulatedLoadOptions) {
    for (const s of options.streams) this.#streams.set(s.id, { spec: s, demandHz: s.rateHz, capHz: s.rateHz, shed: false, owed: 0, served: 0, dropped: 0 });
    this.placements = new Map(Object.entries(options.placements));
    this.adcBits = options.adcBits;
  }

  /** The application's demand changes (a scene gets busy, a sensor wakes up). */
  setDemand(stream: string, hz: number): void {
    this.#stream(stream).demandHz = hz;
  }

  /** Moves device time on by `ms`, serving what the knobs allow and draining the battery. */
  advance(ms: number): void {
    const { clock, battery, costs, ledger } = this.options;
    clock.advance(ms);
    for (const s of this.#streams.values()) {
      const wanted = s.demandHz * (ms / 1000);
      const rate = this.paused || s.shed ? 0 : Math.min(s.demandHz, s.capHz);
      s.owed += rate * (ms / 1000);
      const n = Math.floor(s.owed + 1e-9);
      s.owed -= n;
      s.served += n;
      s.dropped += Math.max(wanted - rate * (ms / 1000), 0);
      if (n === 0) continue;
      const placement = this.placements.get(s.spec.model) ?? 'digital';
      const bits = this.adcBits ?? 8;
      const breakdown = costs.breakdown(s.spec.model, placement, bits);
      if (!breakdown) throw new Error(`model '${s.spec.model}' cannot run ${placement}`);
      battery.consume(breakdown.total * n);
      const modelled = this.options.modelledCosts?.breakdown(s.spec.model, placement, bits) ?? breakdown;
      ledger?.record(modelled, { model: s.spec.model, count: n });
    }
  }

  stats(stream: string): { served: number; dropped: number; shed: boolean; capHz: number; demandHz: number } {
    const s = this.#stream(stream);
    return { served: s.served, dropped: s.dropped, shed: s.shed, capHz: s.capHz, demandHz: s.demandHz };
  }

  setAdcBits(bits: number): void {
    if (this.adcBits === undefined) throw new Error('no analog device: ADC resolution cannot change');
    this.adcBits = bits;
  }

  setPlacement(model: string, placement: Placement): void {
    this.placements.set(model, placement);
  }

  setStreamRate(stream: string, hz: number): void {
    this.#stream(stream).capHz = hz;
  }

  shedStream(stream: string): void {
    this.#stream(stream).shed = true;
  }

  restoreStream(stream: string): void {
    this.#stream(stream).shed = false;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  #stream(id: string): StreamState {
    const s = this.#streams.get(id);
    if (!s) throw new Error(`unknown stream '${id}'`);
    return s;
  }
}
