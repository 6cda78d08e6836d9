/**
 * A placed model whose placement can change while streams use it: a command or the power governor
 * re-places the model (e.g. analog → digital) and the new PlacedModel takes the next request; the
 * old one is disposed once the runs it started have finished. The scheduler keeps the lane it
 * bound the stream to at addStream time (concurrency accounting only).
 */
import type { Feeds } from '../model/feeds.js';
import type { PlacedModel, PlacedRun } from './types.js';

export class SwitchableModel implements PlacedModel {
  #inner: PlacedModel;
  #placement: string;
  readonly #running = new Map<PlacedModel, number>();
  readonly #retiring = new Map<PlacedModel, () => void>();
  #switches = 0;

  constructor(inner: PlacedModel, placement: string) {
    this.#inner = inner;
    this.#placement = placement;
  }

  get id(): string { return this.#inner.id; }
  get lane(): string { return this.#inner.lane; }
  get inputs(): PlacedModel['inputs'] { return this.#inner.inputs; }
  get outputs(): PlacedModel['outputs'] { return this.#inner.outputs; }
  /** The policy the current placement was made with ('analog', 'digital', 'auto'). */
  get placement(): string { return this.#placement; }
  get current(): PlacedModel { return this.#inner; }

  async run(feeds: Feeds): Promise<PlacedRun> {
    const m = this.#inner;
    this.#running.set(m, (this.#running.get(m) ?? 0) + 1);
    try {
      return await m.run(feeds);
    } finally {
      const left = this.#running.get(m)! - 1;
      if (left > 0) this.#running.set(m, left);
      else {
        this.#running.delete(m);
        this.#retiring.get(m)?.();
      }
    }
  }

  /** Makes `next` serve every later request; resolves when the previous model is disposed. */
  async replace(next: PlacedModel, placement: string): Promise<void> {
    if (next.id !== this.#inner.id) throw new Error(`cannot replace model '${this.#inner.id}' by '${next.id}'`);
    const old = this.#inner;
    this.#inner = next;
    this.#placement = placement;
    this.#switches++;
    if (this.#running.has(old)) await new Promise<void>((resolve) => this.#retiring.set(old, resolve));
    this.#retiring.delete(old);
    await old.dispose();
  }

  snapshot(): Record<string, unknown> {
    return { ...this.#inner.snapshot(), policy: this.#placement, ...(this.#switches ? { placementChanges: this.#switches } : {}) };
  }

  dispose(): Promise<void> {
    return this.#inner.dispose();
  }
}
