/**
 * The digital backend: onnxruntime-web's WebAssembly execution provider, in Node or a browser.
 * One InferenceSession per prepared model, reused for every run; feeds that already are
 * ort.Tensors, or plain {type, data, dims} objects, are passed on without copying their data.
 */
import * as ort from 'onnxruntime-web';
import type { Backend, BackendCapabilities, BackendCounters, PreparedModel } from '../../runtime/backend.js';
import type { AcceleratorHealth } from '../../runtime/accelerator.js';
import type { LoadedModel } from '../../runtime/model/load.js';
import { validateFeeds, type Feeds } from '../../runtime/model/feeds.js';
import { ModelError } from '../../runtime/model/errors.js';
import { sameDims, type TensorData } from '../../runtime/model/tensor.js';

export interface DigitalBackendOptions {
  /** WebAssembly threads (1 keeps the event loop's core free on small boards). */
  threads?: number;
  /** onnxruntime graph optimisation level. */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export const DIGITAL_BACKEND = 'digital';

export function toOrtTensor(t: TensorData): ort.Tensor {
  if (t instanceof ort.Tensor) return t;
  return new ort.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
}

/**
 * ort.Tensor wrappers of the last inputs, per input name: a caller that feeds the same buffer
 * with the same dims again (a camera frame buffer, a sensor window) gets the same wrapper instead
 * of a new one per inference. onnxruntime copies the data at each run, so in-place changes count.
 */
class TensorWrappers {
  readonly #last = new Map<string, ort.Tensor>();

  wrap(name: string, t: TensorData): ort.Tensor {
    if (t instanceof ort.Tensor) return t;
    const last = this.#last.get(name);
    if (last && last.data === t.data && last.type === t.type && sameDims(last.dims, t.dims)) return last;
    const wrapped = toOrtTensor(t);
    this.#last.set(name, wrapped);
    return wrapped;
  }
}

export class DigitalBackend implements Backend {
  readonly name = DIGITAL_BACKEND;
  readonly #options: DigitalBackendOptions;
  #inferences = 0;
  readonly #sessions = new Set<ort.InferenceSession>();

  constructor(options: DigitalBackendOptions = {}) {
    this.#options = options;
    // Set before the first session: the wasm module is instantiated once per process.
    ort.env.wasm.numThreads = options.threads ?? 1;
    ort.env.logLevel = 'fatal';
  }

  capabilities(): BackendCapabilities {
    return { precision: 'float32' };
  }

  async load(model: LoadedModel): Promise<PreparedModel> {
    const session = await createSession(model.bytes, model.source, this.#options);
    this.#sessions.add(session);
    const backend = this;
    const fetches = model.outputs.map((o) => o.name);
    const tensors = new TensorWrappers();
    return {
      model,
      inputs: model.inputs,
      outputs: model.outputs,
      async run(feeds: Feeds): Promise<Record<string, TensorData>> {
        validateFeeds(model.inputs, feeds, model.source);
        const ortFeeds: Record<string, ort.Tensor> = {};
        for (const name in feeds) ortFeeds[name] = tensors.wrap(name, feeds[name]!);
        const out = await session.run(ortFeeds, fetches, RUN_OPTIONS);
        backend.#inferences++;
        return out;
      },
      async dispose(): Promise<void> {
        if (backend.#sessions.delete(session)) await session.release(); // once, whoever disposes first
      },
    };
  }

  async health(): Promise<AcceleratorHealth> {
    return { state: 'ok' };
  }

  counters(): BackendCounters {
    return { inferences: this.#inferences };
  }

  async dispose(): Promise<void> {
    const sessions = [...this.#sessions];
    this.#sessions.clear();
    await Promise.all(sessions.map((s) => s.release()));
  }
}

/** onnxruntime's severity scale: 0 verbose … 3 error, 4 fatal. */
const ORT_LOG_SEVERITY = 4;
const RUN_OPTIONS: ort.InferenceSession.RunOptions = { logSeverityLevel: ORT_LOG_SEVERITY };

export async function createSession(bytes: Uint8Array, source: string, options: DigitalBackendOptions = {}): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: options.graphOptimization ?? 'all',
      // Fatal only: onnxruntime's own log lines (optimiser notes about cut sub-models, a kernel's
      // failure) would reach stderr before edgerun's error, which already carries the message.
      logSeverityLevel: ORT_LOG_SEVERITY,
    });
  } catch (e) {
    // Passed our validation but onnxruntime still refused it (e.g. an op it does not implement).
    throw new ModelError('CORRUPT', `${source}: onnxruntime could not load the model: ${firstLine(e)}`);
  }
}

/** Why onnxruntime cannot create a session for the model (its reason, one line), or undefined when it can. */
export async function sessionRefusal(bytes: Uint8Array, options: DigitalBackendOptions = {}): Promise<string | undefined> {
  try {
    await (await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: options.graphOptimization ?? 'all', logSeverityLevel: 3 })).release();
    return undefined;
  } catch (e) {
    return firstLine(e);
  }
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split('\n')[0]!.trim();
}
