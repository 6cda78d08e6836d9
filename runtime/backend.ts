/**
 * The Backend seam (after onnxruntime-common's Backend/InferenceSession): a backend prepares a
 * validated model once and then runs it many times. Backends register by name with a priority;
 * the digital onnxruntime-web backend is always present.
 */
import type { LoadedModel, IOSpec } from './model/load.js';
import type { Feeds } from './model/feeds.js';
import type { TensorData } from './model/tensor.js';
import type { AcceleratorHealth } from './accelerator.js';

export interface BackendCapabilities {
  /** Operator types the backend executes itself (undefined: everything onnxruntime runs). */
  ops?: string[];
  /** Numeric precision of its arithmetic, e.g. "float32" or "analog-8bit". */
  precision: string;
  /** Largest matrix block one compute unit holds, for analog tiles. */
  maxTile?: { rows: number; cols: number };
}

export interface BackendCounters {
  inferences: number;
  /** Multiply-accumulates executed, where the backend knows them. */
  macs?: number;
  [name: string]: number | undefined;
}

/** A model prepared for one backend: the analogue of an InferenceSession. */
export interface PreparedModel {
  readonly model: LoadedModel;
  readonly inputs: readonly IOSpec[];
  readonly outputs: readonly IOSpec[];
  /** Runs one inference; feeds are validated against `inputs` first. */
  run(feeds: Feeds): Promise<Record<string, TensorData>>;
  dispose(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  capabilities(): BackendCapabilities;
  load(model: LoadedModel): Promise<PreparedModel>;
  health(): Promise<AcceleratorHealth>;
  counters(): BackendCounters;
  dispose(): Promise<void>;
}

export type BackendFactory = () => Backend | Promise<Backend>;

interface Registration { factory: BackendFactory; priority: number; instance?: Promise<Backend> }

/** Backends by name, created lazily once; `list()` is ordered by descending priority. */
export class BackendRegistry {
  readonly #entries = new Map<string, Registration>();

  register(name: string, factory: BackendFactory, priority = 0): void {
    if (this.#entries.has(name)) throw new Error(`backend '${name}' is already registered`);
    this.#entries.set(name, { factory, priority });
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  list(): string[] {
    return [...this.#entries.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([n]) => n);
  }

  async get(name: string): Promise<Backend> {
    const entry = this.#entries.get(name);
    if (!entry) throw new Error(`unknown backend '${name}'; registered: ${this.list().join(', ') || 'none'}`);
    entry.instance ??= Promise.resolve(entry.factory());
    return entry.instance;
  }

  /** Disposes the created backends, highest priority first (they may sit on lower ones). */
  async dispose(): Promise<void> {
    for (const name of this.list()) {
      const entry = this.#entries.get(name)!;
      if (!entry.instance) continue;
      const instance = entry.instance;
      delete entry.instance;
      await (await instance).dispose();
    }
  }
}
