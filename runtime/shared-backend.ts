/**
 * One backend shared by many emulated devices in one thread (a fleet worker): a model whose bytes
 * were loaded once is not loaded again, so a thousand devices serving the MLP hold one
 * onnxruntime session for it (and one for each sub-model their placement builds: folded
 * constants, observed values, digital segments), not one per device.
 *
 *   const shared = new SharedBackend(new DigitalBackend());
 *   registry.register(DIGITAL, () => shared.user());   // per device: dispose() is the device's, not the session's
 *   await shared.dispose();                             // at the end of the worker: releases every session
 *
 * Sessions stay until the shared backend is disposed: the devices of a worker load the same few
 * models, so the cache holds a handful of entries however many devices come and go.
 */
import type { Backend, BackendCapabilities, BackendCounters, PreparedModel } from './backend.js';
import type { AcceleratorHealth } from './accelerator.js';
import type { LoadedModel } from './model/load.js';
import type { Feeds } from './model/feeds.js';
import type { TensorData } from './model/tensor.js';
import { crc32 } from './telemetry/journal.js';

interface Entry { bytes: Uint8Array; prepared: Promise<PreparedModel> }

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class SharedBackend {
  /** By CRC-32 of the model bytes; equal CRCs are told apart by comparing the bytes. */
  readonly #entries = new Map<number, Entry[]>();
  /** The same bytes object again (the worker's loaded models): no checksum over a megabyte per device. */
  readonly #byIdentity = new WeakMap<Uint8Array, Entry>();
  #disposed = false;

  constructor(readonly inner: Backend) {}

  /** Distinct models loaded (one session each). */
  get sessions(): number {
    let n = 0;
    for (const list of this.#entries.values()) n += list.length;
    return n;
  }

  /** The prepared model for these bytes: loaded on first use, shared afterwards. */
  prepared(model: LoadedModel): Promise<PreparedModel> {
    if (this.#disposed) return Promise.reject(new Error(`the shared ${this.inner.name} backend is disposed`));
    const known = this.#byIdentity.get(model.bytes);
    if (known) return known.prepared;
    const key = crc32(model.bytes);
    const list = this.#entries.get(key) ?? [];
    const hit = list.find((e) => sameBytes(e.bytes, model.bytes));
    if (hit) {
      this.#byIdentity.set(model.bytes, hit);
      return hit.prepared;
    }
    const entry: Entry = { bytes: model.bytes, prepared: this.inner.load(model) };
    list.push(entry);
    this.#byIdentity.set(model.bytes, entry);
    this.#entries.set(key, list);
    // A model that failed to load is tried again by the next caller.
    entry.prepared.catch(() => {
      list.splice(list.indexOf(entry), 1);
      this.#byIdentity.delete(model.bytes);
    });
    return entry.prepared;
  }

  /** A device's view: loads are shared, dispose() releases nothing of the others'. */
  user(): Backend {
    const shared = this;
    const inner = this.inner;
    return {
      name: inner.name,
      capabilities: (): BackendCapabilities => inner.capabilities(),
      health: (): Promise<AcceleratorHealth> => inner.health(),
      counters: (): BackendCounters => inner.counters(),
      async load(model: LoadedModel): Promise<PreparedModel> {
        const prepared = await shared.prepared(model);
        return {
          model, inputs: model.inputs, outputs: model.outputs,
          run: (feeds: Feeds): Promise<Record<string, TensorData>> => prepared.run(feeds),
          dispose: async () => undefined,
        };
      },
      dispose: async () => undefined,
    };
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    const entries = [...this.#entries.values()].flat();
    this.#entries.clear();
    await Promise.all(entries.map(async (e) => (await e.prepared.catch(() => undefined))?.dispose()));
    await this.inner.dispose();
  }
}
