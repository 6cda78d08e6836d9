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

/** The name the digital (onnxruntime-web) backend registers under; it is always present. */
export const DIGITAL = 'digital';

/**
 * Where a model runs: `digital` always on onnxruntime; `analog` on the accelerator (with digital
 * fallback when it fails); `auto` on the highest-priority backend that can take the model.
 */
export type PlacementPolicy = 'analog' | 'digital' | 'auto';

export interface PlacementConfig {
  default: PlacementPolicy;
  /** Per model id (file name without extension, or the id given to the scheduler). */
  models: Record<string, PlacementPolicy>;
}

interface Registration { factory: BackendFactory; priority: number; instance?: Promise<Backend> }

/**
 * Backends by name, created lazily once; `list()` is ordered by descending priority. Like
 * onnxruntime's registerBackend/resolveBackend: `resolve()` tries candidates in priority order and
 * takes the first that initialises, reporting why the others did not. A factory that throws is
 * retried on the next `get()` (a device may come up later).
 */
export class BackendRegistry {
  readonly #entries = new Map<string, Registration>();
  #placement: PlacementConfig = { default: 'auto', models: {} };

  constructor(options: { digital?: BackendFactory; placement?: Partial<PlacementConfig> } = {}) {
    if (options.digital) this.register(DIGITAL, options.digital, 0);
    if (options.placement) this.setPlacement(options.placement);
  }

  register(name: string, factory: BackendFactory, priority = 0): void {
    if (this.#entries.has(name)) throw new Error(`backend '${name}' is already registered`);
    if (!Number.isFinite(priority)) throw new Error(`backend '${name}': priority must be a finite number, got ${priority}`);
    this.#entries.set(name, { factory, priority });
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  list(): string[] {
    // Stable for equal priorities: registration order.
    return [...this.#entries.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([n]) => n);
  }

  priorityOf(name: string): number {
    const entry = this.#entries.get(name);
    if (!entry) throw new Error(`unknown backend '${name}'; registered: ${this.list().join(', ') || 'none'}`);
    return entry.priority;
  }

  async get(name: string): Promise<Backend> {
    const entry = this.#entries.get(name);
    if (!entry) throw new Error(`unknown backend '${name}'; registered: ${this.list().join(', ') || 'none'}`);
    if (!entry.instance) {
      const created = Promise.resolve().then(entry.factory);
      entry.instance = created;
      created.catch(() => { if (entry.instance === created) delete entry.instance; });
    }
    return entry.instance;
  }

  /** The digital backend; a registry without one is a configuration error. */
  async digital(): Promise<Backend> {
    if (!this.has(DIGITAL)) throw new Error(`no '${DIGITAL}' backend registered: the digital backend must always be present (it is the fallback)`);
    return this.get(DIGITAL);
  }

  /** The first of `names` (default: all, by priority) that initialises, with the others' errors. */
  async resolve(names: string[] = this.list()): Promise<{ name: string; backend: Backend; skipped: { name: string; error: string }[] }> {
    const skipped: { name: string; error: string }[] = [];
    for (const name of names) {
      try {
        return { name, backend: await this.get(name), skipped };
      } catch (e) {
        skipped.push({ name, error: e instanceof Error ? e.message : String(e) });
      }
    }
    throw new Error(`no backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.error}`).join('; ') || 'none registered'}`);
  }

  setPlacement(placement: Partial<PlacementConfig>): void {
    this.#placement = { default: placement.default ?? this.#placement.default, models: { ...this.#placement.models, ...placement.models } };
  }

  placementOf(modelId: string): PlacementPolicy {
    return this.#placement.models[modelId] ?? this.#placement.default;
  }

  /** Backend names a policy may use, in the order to try them (digital is always last). */
  candidates(policy: PlacementPolicy): string[] {
    const accelerators = this.list().filter((n) => n !== DIGITAL);
    if (policy === 'digital') return [DIGITAL];
    return [...accelerators, DIGITAL];
  }

  /** Disposes the created backends, highest priority first (they may sit on lower ones). */
  async dispose(): Promise<void> {
    for (const name of this.list()) {
      const entry = this.#entries.get(name)!;
      if (!entry.instance) continue;
      const instance = entry.instance;
      delete entry.instance;
      const backend = await instance.catch(() => undefined);
      await backend?.dispose();
    }
  }
}
