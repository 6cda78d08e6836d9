/**
 * Adapts a model served by a FallbackModel on the hybrid AnalogBackend to the guard: canaries and
 * calibration run on the accelerator model between requests (it reuses its buffers), per-layer
 * errors compare each analog layer's output with the digital value given the same input.
 */
import type { Backend, PreparedModel } from '../backend.js';
import type { Feeds } from '../model/feeds.js';
import { loadModel } from '../model/load.js';
import { onnx, type ModelProto } from '../model/onnx.js';
import type { TensorData } from '../model/tensor.js';
import { HybridModel, type AnalogBackend } from '../hybrid/analog-backend.js';
import type { FallbackModel } from '../scheduler/fallback-model.js';
import { relativeError } from './canary.js';
import type { GuardTarget, LayerError } from './target.js';
import { AccuracyGuard, type GuardOptions } from './accuracy-guard.js';

export class HybridGuardTarget implements GuardTarget {
  readonly id: string;
  readonly #demoted = new Set<string>();
  #exposed: Promise<PreparedModel> | undefined;

  constructor(private readonly served: FallbackModel, private readonly backend: AnalogBackend, private readonly digital: Backend) {
    this.id = served.id;
  }

  available(): boolean {
    return this.served.supervisor.healthy && this.served.primary instanceof HybridModel;
  }

  runAccelerator(feeds: Feeds): Promise<Record<string, TensorData> | undefined> {
    return this.served.withPrimary((p) => p.run(feeds));
  }

  runReference(feeds: Feeds): Promise<Record<string, TensorData>> {
    return this.served.digital.run(feeds);
  }

  async recalibrate(): Promise<void> {
    await this.served.withPrimary((p) => hybrid(p).calibrate());
  }

  async reprogram(): Promise<void> {
    await this.served.withPrimary((p) => hybrid(p).reprogram());
  }

  async rankLayers(feeds: Feeds): Promise<LayerError[]> {
    const exposed = await (this.#exposed ??= this.#loadExposed());
    const values = await exposed.run(feeds);
    const errors = await this.served.withPrimary((p) => hybrid(p).exclusive(async () => {
      const out: LayerError[] = [];
      for (const runner of hybrid(p).runners) {
        const x = values[runner.layer.input];
        const ref = values[runner.layer.output];
        if (!x || !ref) continue;
        const y = await runner.run(x);
        out.push({ name: runner.layer.name, error: relativeError(ref.data as Float32Array, y.data as Float32Array) });
      }
      return out;
    }));
    return (errors ?? []).sort((a, b) => b.error - a.error);
  }

  async demoteLayers(names: readonly string[]): Promise<void> {
    const next = new Set([...this.#demoted, ...names]);
    const model = await this.backend.load(this.served.model, { digitalLayers: next });
    await this.served.replacePrimary(model);
    for (const n of names) this.#demoted.add(n);
  }

  demoteModel(reason: string): void {
    this.served.demote(reason);
  }

  promoteModel(): void {
    this.served.promote();
  }

  demotedLayers(): readonly string[] {
    return [...this.#demoted];
  }

  async dispose(): Promise<void> {
    const exposed = this.#exposed;
    this.#exposed = undefined;
    if (exposed) await (await exposed).dispose();
  }

  /** The model with every intermediate value as an output, on the digital backend (as observeValues does). */
  async #loadExposed(): Promise<PreparedModel> {
    const proto = onnx.ModelProto.decode(this.served.model.bytes) as ModelProto;
    const graph = proto.graph!;
    const declared = new Set((graph.output ?? []).map((o) => o.name));
    for (const node of graph.node ?? []) {
      for (const out of node.output ?? []) {
        if (out && !declared.has(out)) { graph.output!.push(onnx.ValueInfoProto.create({ name: out })); declared.add(out); }
      }
    }
    return this.digital.load(loadModel(onnx.ModelProto.encode(proto).finish(), { source: `${this.served.model.source} (values exposed)` }));
  }
}

function hybrid(p: PreparedModel): HybridModel {
  if (!(p instanceof HybridModel)) throw new Error('the accuracy guard needs a model on the hybrid analog backend');
  return p;
}

/** A guard for a model served on the hybrid analog backend, canary fed to its first input. */
export function guardHybridModel(served: FallbackModel, backend: AnalogBackend, digital: Backend, options: GuardOptions): AccuracyGuard {
  const input = served.inputs[0]?.name;
  const output = served.outputs[0]?.name;
  if (!input || !output) throw new Error(`${served.id}: the accuracy guard needs a model with an input and an output`);
  return new AccuracyGuard(new HybridGuardTarget(served, backend, digital), { ...options, input, output });
}
