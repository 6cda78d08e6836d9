/**
 * Puts each model where its placement policy says: `digital` on onnxruntime; `analog` on the
 * accelerator with digital fallback (a model the accelerator cannot take is an error); `auto` on
 * the highest-priority backend that takes it, else digital. One AcceleratorSupervisor per
 * accelerator backend is shared by every model on it.
 */
import { DIGITAL, type Backend, type BackendRegistry, type PlacementPolicy, type PreparedModel } from '../backend.js';
import type { LoadedModel } from '../model/load.js';
import type { Feeds } from '../model/feeds.js';
import { FallbackModel, type FallbackOptions } from './fallback-model.js';
import { AcceleratorSupervisor, type SupervisorOptions } from './supervisor.js';
import type { PlacedModel, PlacedRun } from './types.js';

/** A model on the digital backend only. */
export class DigitalModel implements PlacedModel {
  readonly lane = DIGITAL;
  readonly inputs;
  readonly outputs;
  readonly direct;

  constructor(readonly id: string, readonly prepared: PreparedModel, readonly policy: PlacementPolicy, readonly note?: string) {
    this.inputs = prepared.inputs;
    this.outputs = prepared.outputs;
    this.direct = { prepared, backend: 'digital' as const };
  }

  async run(feeds: Feeds): Promise<PlacedRun> {
    return { outputs: await this.prepared.run(feeds), backend: 'digital' };
  }

  snapshot(): Record<string, unknown> {
    return { id: this.id, placement: 'digital', policy: this.policy, ...(this.note ? { note: this.note } : {}) };
  }

  dispose(): Promise<void> {
    return this.prepared.dispose();
  }
}

export interface PlacerOptions {
  supervisor?: SupervisorOptions;
  fallback?: FallbackOptions;
}

export class ModelPlacer {
  readonly #supervisors = new Map<string, AcceleratorSupervisor>();

  constructor(readonly registry: BackendRegistry, private readonly options: PlacerOptions = {}) {}

  /** The supervisor of an accelerator backend (created on first use). */
  supervisor(name: string, backend: Backend): AcceleratorSupervisor {
    let s = this.#supervisors.get(name);
    if (!s) this.#supervisors.set(name, (s = new AcceleratorSupervisor(name, backend, this.options.supervisor)));
    return s;
  }

  supervisors(): AcceleratorSupervisor[] {
    return [...this.#supervisors.values()];
  }

  async place(id: string, model: LoadedModel, policy: PlacementPolicy = this.registry.placementOf(id)): Promise<PlacedModel> {
    const digital = await (await this.registry.digital()).load(model);
    if (policy === 'digital') return new DigitalModel(id, digital, policy);
    const refused: string[] = [];
    for (const name of this.registry.candidates(policy)) {
      if (name === DIGITAL) break;
      let backend: Backend;
      try {
        backend = await this.registry.get(name);
      } catch (e) {
        refused.push(`${name}: unavailable (${(e as Error).message})`);
        continue;
      }
      try {
        return await FallbackModel.create(id, model, backend, this.supervisor(name, backend), digital, this.options.fallback);
      } catch (e) {
        refused.push(`${name}: ${(e as Error).message}`);
      }
    }
    if (policy === 'analog') {
      await digital.dispose();
      throw new Error(`model '${id}' has placement 'analog' but no accelerator takes it: ${refused.join('; ') || 'no accelerator backend registered'}`);
    }
    return new DigitalModel(id, digital, policy, refused.length ? `accelerators refused it: ${refused.join('; ')}` : undefined);
  }

  /** Stops health checks and probes. */
  dispose(): void {
    for (const s of this.#supervisors.values()) s.stop();
  }
}
