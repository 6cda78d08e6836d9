/**
 * The hybrid analog/digital backend: matrix–vector layers on the accelerator (through the
 * CrossbarDriver seam), every other node in onnxruntime sub-models on the digital backend.
 */
import type { Backend, BackendCapabilities, BackendCounters, PreparedModel } from '../backend.js';
import type { AcceleratorHealth, CrossbarDriver } from '../accelerator.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { validateFeeds, type Feeds } from '../model/feeds.js';
import { sameDims, type TensorData } from '../model/tensor.js';
import { observeValues, type ValueFacts } from '../model/observe.js';
import { foldConstants } from '../model/fold.js';
import { partitionModel, type NodePlacement, type Partition } from '../model/partition.js';
import { buildPlan, type ExecutionPlan } from '../model/segments.js';
import { TileAllocator } from '../analog/tile-allocator.js';
import { AnalogMatrix } from '../analog/analog-matrix.js';
import { AnalogLayerRunner } from './analog-layer.js';
import { fusePeriphery, type PeripheryLayer } from './periphery-plan.js';
import type { PeripheryOp } from '../accelerator.js';
import { checkFiniteOutput } from './finite-output.js';

export interface AnalogBackendOptions {
  digital: Backend;
  driver: CrossbarDriver;
  /** Keep layers that do not fit the free tiles digital instead of refusing the model. */
  fallbackOversized?: boolean;
  /** dispose() also disposes the driver (set when this backend created it, e.g. a remote connection). */
  ownsDriver?: boolean;
  /**
   * Apply what the device's digital periphery can (BatchNormalization, activations, pooling) next
   * to the arrays (true, the default), or leave every non-MVM node to onnxruntime (false).
   */
  periphery?: boolean;
}

export interface LoadOptions {
  /** Names of analog-eligible layers to run digitally instead. */
  digitalLayers?: ReadonlySet<string>;
}

function demote(full: Partition, names: ReadonlySet<string>): Partition {
  if (names.size === 0) return full;
  return {
    layers: full.layers.filter((l) => !names.has(l.name)),
    placements: full.placements.map((p) => (p.target === 'analog' && names.has(p.name) ? { ...p, target: 'digital', reason: 'demoted to digital by the accuracy guard' } : p)),
  };
}

/** Per node: where it runs and why, its tiles and its converter work per inference (batch 1). */
export interface PlanRow extends NodePlacement {
  tiles: number;
  mvmsPerInference: number;
  dacPerInference: number;
  adcPerInference: number;
}

export class AnalogBackend implements Backend {
  readonly name = 'analog';
  readonly allocator: TileAllocator;
  #inferences = 0;
  readonly #prepared = new Set<HybridModel>();

  constructor(private readonly options: AnalogBackendOptions) {
    this.allocator = new TileAllocator(options.driver.info());
  }

  get driver(): CrossbarDriver {
    return this.options.driver;
  }

  capabilities(): BackendCapabilities {
    const info = this.options.driver.info();
    return { ops: ['MatMul', 'Gemm', 'Conv'], precision: `analog (DAC ${info.dacBits} bit, ADC ${info.adcBits} bit)`, maxTile: { rows: info.tileRows, cols: info.tileCols } };
  }

  /** Places the model; layers named in `digitalLayers` stay digital (the accuracy guard's demotion). */
  async load(model: LoadedModel, options: LoadOptions = {}): Promise<HybridModel> {
    const { digital, driver } = this.options;
    const info = driver.info();
    // Weights computed from constants (ConstantOfShape, Transpose, DequantizeLinear, ...) are folded
    // for placement only: the prepared model keeps the original, so they are not held twice.
    const folded = await foldConstants(digital, model);
    // Shapes come from one run on zeros. A model that zeros cannot run (a shape, size or count read
    // from an input) still runs, wholly in onnxruntime: no MVM is placed without its observed input.
    const observed = await observeValues(digital, folded).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    const facts = observed instanceof Error ? new Map<string, ValueFacts>() : observed;
    const placed = demote(partitionModel(folded, {
      tileRows: info.tileRows, tileCols: info.tileCols, availableTiles: this.allocator.available,
      fallbackOversized: this.options.fallbackOversized ?? true, facts,
      ...(observed instanceof Error ? { unobserved: firstLine(observed.message) } : {}),
    }), options.digitalLayers ?? new Set());
    const partition = this.options.periphery === false ? placed
      : fusePeriphery(folded, placed, facts, { profile: info.profile, ops: new Set(Object.keys(info.periphery ?? {}) as PeripheryOp[]) });
    const plan = buildPlan(folded, partition, facts);
    const runners: AnalogLayerRunner[] = [];
    // Matrices allocated so far: released if a later allocation, programming or segment load fails.
    const matrices: AnalogMatrix[] = [];
    const segments = new Map<number, PreparedModel>();
    try {
      for (const layer of partition.layers) {
        runners.push(new AnalogLayerRunner(layer, layer.groupWeights.map((w, g) => {
          const m = new AnalogMatrix(driver, this.allocator, w, layer.k, layer.n, `node '${layer.name}'${layer.groupWeights.length > 1 ? ` group ${g}` : ''}`, layer.quantized?.columnScales[g]);
          matrices.push(m);
          return m;
        })));
      }
      for (const m of matrices) await m.program();
      for (const [i, step] of plan.steps.entries()) {
        if (step.kind === 'digital') segments.set(i, await digital.load(loadModel(step.bytes, { source: `${model.source} segment ${i}` })));
      }
    } catch (e) {
      this.allocator.release(matrices.flatMap((m) => m.tiles));
      await Promise.all([...segments.values()].map((s) => s.dispose()));
      throw e;
    }
    const hybrid = new HybridModel(this, model, partition, plan, runners, segments, facts);
    this.#prepared.add(hybrid);
    return hybrid;
  }

  /** Changes the accelerator's ADC resolution (the governor's `adc-bits` action), where the driver can. */
  async setAdcBits(bits: number): Promise<void> {
    const { driver } = this.options;
    if (!driver.setAdcBits) throw new Error(`the ${driver.info().driver} accelerator has a fixed ADC resolution`);
    await driver.setAdcBits(bits);
  }

  /** @internal called by HybridModel */
  countInference(): void {
    this.#inferences++;
  }

  /** @internal called by HybridModel.dispose */
  forget(model: HybridModel, tiles: number[]): void {
    this.#prepared.delete(model);
    this.allocator.release(tiles);
  }

  async health(): Promise<AcceleratorHealth> {
    return this.options.driver.health();
  }

  counters(): BackendCounters {
    return { inferences: this.#inferences };
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.#prepared].map((m) => m.dispose()));
    if (this.options.ownsDriver) await this.options.driver.dispose();
  }
}

export class HybridModel implements PreparedModel {
  readonly inputs;
  readonly outputs;
  readonly #runnerOf: ReadonlyMap<number, AnalogLayerRunner>;
  /**
   * The model outputs, which the caller receives. Every other analog layer output lives only within
   * a run (a layout view never yields a model output, segments.ts), so its runner writes it into a
   * buffer of its own: allocating a typed array per layer costs about a microsecond.
   */
  readonly #returned: ReadonlySet<string>;
  #idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly backend: AnalogBackend,
    readonly model: LoadedModel,
    readonly partition: Partition,
    readonly plan: ExecutionPlan,
    readonly runners: AnalogLayerRunner[],
    private readonly segments: Map<number, PreparedModel>,
    /** dtype and dims of every value at batch 1, as observed when the plan was built. */
    readonly facts: ReadonlyMap<string, ValueFacts>,
  ) {
    this.inputs = model.inputs;
    this.outputs = model.outputs;
    this.#runnerOf = new Map(runners.map((r) => [r.layer.nodeIndex, r]));
    this.#returned = new Set(model.outputs.map((o) => o.name));
  }

  /**
   * Runs `fn` when no other run, reprogramming or calibration of this model is in progress: the
   * layers reuse their buffers (im2col patches, tile outputs) across awaits, so two interleaved
   * runs would read each other's values.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#idle.then(fn);
    this.#idle = result.then(() => undefined, () => undefined);
    return result;
  }

  async run(feeds: Feeds): Promise<Record<string, TensorData>> {
    validateFeeds(this.model.inputs, feeds, this.model.source);
    return this.exclusive(() => this.#run(feeds));
  }

  /** Per node the digital periphery applies: its operator and the elements it reads per output element. */
  peripheryNodes(): Map<number, { op: PeripheryOp; elementsPerOutput: number }> {
    return new Map(this.partition.layers.flatMap((l: PeripheryLayer) => (l.periphery?.nodes ?? []).map((n) => [n.index, { op: n.op, elementsPerOutput: n.elementsPerOutput }] as const)));
  }

  async #run(feeds: Feeds): Promise<Record<string, TensorData>> {
    const values = new Map<string, TensorData>(Object.entries(feeds));
    const runnerOf = this.#runnerOf;
    for (const [i, step] of this.plan.steps.entries()) {
      if (step.kind === 'analog') {
        const x = values.get(step.layer.input);
        if (!x) throw new Error(`${this.model.source}: value '${step.layer.input}' is missing before node '${step.layer.name}'`);
        const y = await runnerOf.get(step.layer.nodeIndex)!.run(x, !this.#returned.has(step.layer.output));
        checkFiniteOutput(x, y, step.layer.name, this.model.source);
        values.set(step.layer.output, y);
      } else if (step.view && sameDims(values.get(step.view.input)?.dims, step.view.inDims)) {
        const x = values.get(step.view.input)!;
        values.set(step.view.output, { type: x.type, data: x.data, dims: step.view.outDims } as TensorData);
      } else {
        const segmentFeeds: Feeds = {};
        for (const name of step.inputs) segmentFeeds[name] = values.get(name)!;
        const out = await this.segments.get(i)!.run(segmentFeeds);
        for (const name of step.outputs) values.set(name, out[name]!);
      }
      for (const name of this.plan.releases[i]!) values.delete(name);
    }
    this.backend.countInference();
    const result: Record<string, TensorData> = {};
    for (const o of this.model.outputs) result[o.name] = values.get(o.name)!;
    return result;
  }

  /** Re-programs every tile (e.g. after the device lost its state, or to undo drift). */
  reprogram(): Promise<void> {
    return this.exclusive(async () => {
      for (const r of this.runners) for (const m of r.matrices) await m.program();
    });
  }

  /** Refreshes drift compensation on every tile of this model. */
  calibrate(): Promise<void> {
    return this.exclusive(async () => {
      for (const r of this.runners) for (const m of r.matrices) await m.calibrate();
    });
  }

  /** Per node: where it runs, why, tiles, and converter work per inference at batch 1. */
  planRows(): PlanRow[] {
    const layerAt = new Map(this.runners.map((r) => [r.layer.nodeIndex, r]));
    return this.partition.placements.map((p) => {
      const runner = layerAt.get(p.index);
      if (!runner) return { ...p, tiles: 0, mvmsPerInference: 0, dacPerInference: 0, adcPerInference: 0 };
      const { layer, matrices } = runner;
      const outDims = this.facts.get((layer as PeripheryLayer).periphery?.input ?? layer.output)?.dims ?? [];
      const inDims = this.facts.get(layer.input)?.dims ?? [];
      const mvms = layer.kind === 'conv' ? (outDims.slice(2).reduce((a, b) => a * b, 1)) * (inDims[0] ?? 1) * matrices.length
        : layer.kind === 'gemm' ? (layer.gemm!.transA ? inDims[1] ?? 1 : inDims[0] ?? 1)
          : inDims.slice(0, -1).reduce((a, b) => a * b, 1);
      const perMvm = matrices[0]!.blocks.reduce((acc, b) => ({ dac: acc.dac + b.rows, adc: acc.adc + b.cols }), { dac: 0, adc: 0 });
      const perMatrix = layer.kind === 'conv' ? mvms / matrices.length : mvms;
      return { ...p, tiles: layer.tiles, mvmsPerInference: mvms, dacPerInference: perMatrix * perMvm.dac * matrices.length, adcPerInference: perMatrix * perMvm.adc * matrices.length };
    });
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.segments.values()].map((s) => s.dispose()));
    this.segments.clear();
    this.backend.forget(this, this.runners.flatMap((r) => r.matrices.flatMap((m) => m.tiles)));
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}
