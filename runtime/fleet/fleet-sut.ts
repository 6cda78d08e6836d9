/**
 * A fleet of devices as LoadGen's system under test, the load generator strictly apart from it:
 * each query goes to a device (round robin; Offline's one big query is cut into a part per device),
 * the device runs it through its own pipeline and publishes one `results` message per sample,
 * naming the run, the query and the sample's place in it; the consumer that hears them on the broker
 * hands each to offerResult(), and a query completes when its last sample's result arrived. Nothing
 * of a device is read but what it published.
 *
 *   const sut = new FleetSut({ run, devices, dispatch: (device, q) => host.issue(device, q), wallClock });
 *   mqtt.onMessage(…) → collector.offer(…) → sut.offerResult(device, body)   (new results only)
 *   await runScenario(sut, library, …);
 */
import { z } from 'zod';
import type { Clock } from '../ports.js';
import type { Query, SystemUnderTest } from './loadgen.js';

/** What a device is asked to run: `samples` are data-set indices, the k-th is sample `offset + k` of the query. */
export interface DeviceQuery {
  run: string;
  id: number;
  samples: number[];
  offset: number;
  /** Samples in the whole query (a device may hold a part of it). */
  of: number;
  /** When the load generator issued it, wall-clock ms. */
  issuedAt: number;
}

/** The `query` field of a device's result: which run and query, which sample of it. */
const resultQuery = z.object({
  run: z.string(),
  id: z.number().int().min(0),
  k: z.number().int().min(0),
  of: z.number().int().min(1),
  issuedAt: z.number(),
});
export type ResultQuery = z.infer<typeof resultQuery>;

export interface FleetSutCounters {
  /** Queries issued, and their samples. */
  issued: number;
  samples: number;
  /** Queries whose every sample's result arrived. */
  completed: number;
  /** Results for a sample of this run that had its result already. */
  duplicated: number;
  /** Results naming a query this run never issued. */
  unknown: number;
}

interface Pending {
  query: Query;
  predictions: number[];
  seen: Uint8Array;
  left: number;
  complete: (predictions?: readonly number[]) => void;
}

export class FleetSut implements SystemUnderTest {
  readonly #pending = new Map<number, Pending>();
  /** Completed queries' ids (a late duplicate of one is counted, not taken for unknown). */
  readonly #done = new Set<number>();
  #next = 0;
  readonly #counters: FleetSutCounters = { issued: 0, samples: 0, completed: 0, duplicated: 0, unknown: 0 };

  constructor(private readonly o: {
    /** Names this load generator's queries: results of other runs are not its. */
    run: string;
    devices: readonly string[];
    dispatch: (device: string, query: DeviceQuery) => void;
    /** Stamps issuedAt; a consumer on the same host subtracts it from a result's arrival. */
    wallClock: Clock;
    /** Queries larger than this are cut into parts, one per device in turn (Offline's single query). */
    maxSamplesPerDevice?: number;
    /** Added to the query's sample indices (a load generator covering a slice of the devices' data set). */
    sampleOffset?: number;
  }) {
    if (!o.devices.length) throw new Error('a fleet under test needs at least one device');
  }

  issue(query: Query, complete: (predictions?: readonly number[]) => void): void {
    const n = query.samples.length;
    this.#pending.set(query.id, { query, predictions: new Array<number>(n).fill(-1), seen: new Uint8Array(n), left: n, complete });
    this.#counters.issued++;
    this.#counters.samples += n;
    const issuedAt = this.o.wallClock.now();
    const devices = this.o.devices;
    // Offline: its one query spread evenly over every device; the others whole to the next device.
    const part = n > (this.o.maxSamplesPerDevice ?? 64) ? Math.ceil(n / devices.length) : n;
    for (let offset = 0; offset < n; offset += part) {
      const device = devices[this.#next++ % devices.length]!;
      const samples = query.samples.slice(offset, offset + part).map((i) => i + (this.o.sampleOffset ?? 0));
      this.o.dispatch(device, { run: this.o.run, id: query.id, samples, offset, of: n, issuedAt });
    }
  }

  /** A device's `results` body as a consumer received it (new, i.e. de-duplicated on the device's seq); false when it is no result of this run. */
  offerResult(body: unknown): boolean {
    const q = resultQuery.safeParse((body as { query?: unknown } | null)?.query);
    if (!q.success || q.data.run !== this.o.run) return false;
    const { id, k } = q.data;
    const p = this.#pending.get(id);
    if (!p) {
      if (this.#done.has(id)) this.#counters.duplicated++;
      else this.#counters.unknown++;
      return true;
    }
    if (k >= p.seen.length || q.data.of !== p.seen.length) {
      this.#counters.unknown++;
      return true;
    }
    if (p.seen[k]) {
      this.#counters.duplicated++;
      return true;
    }
    p.seen[k] = 1;
    const cls = (body as { class?: unknown }).class;
    p.predictions[k] = typeof cls === 'number' ? cls : -1;
    if (--p.left === 0) {
      this.#pending.delete(id);
      this.#done.add(id);
      this.#counters.completed++;
      p.complete(p.predictions);
    }
    return true;
  }

  /** Queries issued and not complete: a result still to come (or lost). */
  get pending(): number {
    return this.#pending.size;
  }

  counters(): FleetSutCounters {
    return { ...this.#counters };
  }
}
