/**
 * Energy accounting around a prepared model: each run is charged to the ledger and returns its
 * estimate beside the outputs. The work comes from the graph (digital: exact MAC and byte counts of
 * the plan) and, on an analog device, from the tiles' counters read before and after the run, so
 * converter re-runs (bound management) and batch sizes are charged as they happened. Programming
 * and calibration of the model's tiles between runs are charged once, at the next run. Runs of one
 * metered model are expected one at a time (the scheduler serialises a backend).
 */
import type { PreparedModel } from '../backend.js';
import type { TileCounters } from '../accelerator.js';
import type { Feeds } from '../model/feeds.js';
import type { TensorData } from '../model/tensor.js';
import type { ConverterBits, EnergyBreakdown, EnergyModel } from './energy-model.js';
import type { EnergyEstimate, EnergyLedger } from './ledger.js';
import { NO_WORK as ZERO, workFromTileCounters, type InferenceWork } from './work.js';

export interface MeteredModelOptions {
  /** Name the ledger groups the energy under. */
  name: string;
  energy: EnergyModel;
  ledger: EnergyLedger;
  /** Expected work of one sample (estimateWork for the placement this model runs with). */
  work: InferenceWork;
  /** Converter resolutions now (they change when the governor lowers ADC bits). */
  bits?: () => ConverterBits;
  /** The analog device's counters and this model's tiles: measured analog work replaces the estimate. */
  tiles?: {
    counters(): Promise<TileCounters[]>;
    ids: readonly number[];
    /** Counters of these tiles before the model was loaded (default: zero), so its programming is charged. */
    baseline?: readonly TileCounters[];
  };
}

export interface MeteredRun {
  outputs: Record<string, TensorData>;
  /** Per sample. */
  energy: EnergyEstimate;
  samples: number;
}

export class MeteredModel implements PreparedModel {
  #cached: { dac?: number | null; adc?: number | null; breakdown: EnergyBreakdown } | undefined;
  #last: TileCounters[] | undefined;
  /** Reused on every run: record() reads it synchronously, and this runs once per inference. */
  readonly #record = { model: '', count: 1 };

  constructor(readonly inner: PreparedModel, private readonly options: MeteredModelOptions) {
    this.#record.model = options.name;
  }

  get model(): PreparedModel['model'] { return this.inner.model; }
  get inputs(): PreparedModel['inputs'] { return this.inner.inputs; }
  get outputs(): PreparedModel['outputs'] { return this.inner.outputs; }

  async run(feeds: Feeds): Promise<Record<string, TensorData>> {
    return (await this.runWithEnergy(feeds)).outputs;
  }

  async runWithEnergy(feeds: Feeds): Promise<MeteredRun> {
    const { energy, ledger, work, tiles } = this.options;
    const samples = this.#samples(feeds);
    const bits = this.options.bits?.() ?? NO_BITS;
    this.#record.count = samples;
    if (!tiles) {
      const outputs = await this.inner.run(feeds);
      // The estimate only changes with the converter resolutions.
      let c = this.#cached;
      if (!c || c.dac !== bits.dac || c.adc !== bits.adc) this.#cached = c = { dac: bits.dac, adc: bits.adc, breakdown: energy.estimate(work, bits) };
      return { outputs, energy: ledger.record(c.breakdown, this.#record), samples };
    }
    const before = await this.#counters();
    // Whatever the tiles did since the last run (programming, drift calibration) is charged once, now.
    const between = workFromTileCounters(this.#last ?? tiles.baseline ?? [], before);
    if (between.cellsProgrammed || between.analogMacs) ledger.recordProgramming(energy.estimate({ ...ZERO, ...between }, bits).total);
    const outputs = await this.inner.run(feeds);
    const after = await this.#counters();
    this.#last = after;
    const measured = workFromTileCounters(before, after);
    const perSample: InferenceWork = {
      ...work,
      analogMacs: measured.analogMacs! / samples,
      dacConversions: measured.dacConversions! / samples,
      adcConversions: measured.adcConversions! / samples,
      cellsProgrammed: 0,
    };
    return { outputs, energy: ledger.record(energy.estimate(perSample, bits), this.#record), samples };
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  async #counters(): Promise<TileCounters[]> {
    const ids = new Set(this.options.tiles!.ids);
    return (await this.options.tiles!.counters()).filter((c) => ids.has(c.tileId));
  }

  /** Samples in the feeds: the leading dim of the first input when the model leaves it symbolic. */
  #samples(feeds: Feeds): number {
    const spec = this.inner.inputs[0];
    const t = spec ? feeds[spec.name] : undefined;
    if (!spec || !t || typeof spec.dims[0] === 'number') return 1;
    return Math.max(t.dims[0] ?? 1, 1);
  }
}



const NO_BITS: ConverterBits = Object.freeze({});
