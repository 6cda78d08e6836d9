/**
 * A bounded FIFO of one stream's requests with its shedding policy. Requests refused room under
 * `block` wait, in order, outside the queue and move in as room frees up; nothing is dropped.
 */
import type { ShedPolicy } from './types.js';

export interface Queued {
  /** Absolute deadline on the scheduler's clock (Infinity: none). */
  readonly deadline: number;
  readonly submittedAt: number;
}

export type OfferOutcome<T> =
  | { kind: 'queued' }
  /** Queued, and the oldest request was shed to make room. */
  | { kind: 'queued-shedding'; shed: T }
  /** Refused: the stream is full (drop-newest). */
  | { kind: 'refused' }
  /** Waiting for room (block); `admitted` resolves when it entered the queue. */
  | { kind: 'waiting'; admitted: Promise<void> };

const NONE: readonly never[] = [];
// Shared outcomes: offer() is on every request's path.
const QUEUED = { kind: 'queued' } as const;
const REFUSED = { kind: 'refused' } as const;

export class StreamQueue<T extends Queued> {
  readonly #items: T[] = [];
  readonly #waiting: { item: T; admit: () => void }[] = [];
  #maxDepth = 0;

  constructor(readonly capacity: number, readonly policy: ShedPolicy) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`stream capacity must be an integer ≥ 1, got ${capacity}`);
  }

  get depth(): number {
    return this.#items.length;
  }

  /** Requests blocked outside a full queue (block policy). */
  get waiting(): number {
    return this.#waiting.length;
  }

  get maxDepth(): number {
    return this.#maxDepth;
  }

  get oldest(): T | undefined {
    return this.#items[0];
  }

  offer(item: T): OfferOutcome<T> {
    if (this.#items.length < this.capacity && this.#waiting.length === 0) {
      this.#push(item);
      return QUEUED;
    }
    switch (this.policy) {
      case 'drop-newest': return REFUSED;
      case 'drop-oldest': {
        const shed = this.#items.shift()!;
        this.#push(item);
        return { kind: 'queued-shedding', shed };
      }
      case 'block': {
        let admit!: () => void;
        const admitted = new Promise<void>((resolve) => { admit = resolve; });
        this.#waiting.push({ item, admit });
        return { kind: 'waiting', admitted };
      }
    }
  }

  /** Removes up to `n` requests from the head, then lets blocked ones in. */
  take(n: number): T[] {
    const out = this.#items.splice(0, n);
    this.#admitWaiting();
    return out;
  }

  /** Removes every request (queued or blocked) whose deadline is before `now`. */
  removeExpired(now: number): readonly T[] {
    let expired: T[] | undefined;
    for (let i = 0; i < this.#items.length; i++) {
      if (this.#items[i]!.deadline < now) { expired = []; break; }
    }
    if (expired) {
      const keep = this.#items.filter((r) => r.deadline >= now || (expired!.push(r), false));
      this.#items.splice(0, this.#items.length, ...keep);
    }
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i]!;
      if (w.item.deadline < now) {
        this.#waiting.splice(i, 1);
        w.admit(); // the producer may go on; the request itself is reported expired
        (expired ??= []).push(w.item);
      }
    }
    if (!expired) return NONE;
    this.#admitWaiting();
    return expired;
  }

  /** Empties the queue and the blocked list (on close). */
  drain(): T[] {
    const all = [...this.#items.splice(0), ...this.#waiting.splice(0).map((w) => { w.admit(); return w.item; })];
    return all;
  }

  #push(item: T): void {
    this.#items.push(item);
    if (this.#items.length > this.#maxDepth) this.#maxDepth = this.#items.length;
  }

  #admitWaiting(): void {
    while (this.#items.length < this.capacity && this.#waiting.length) {
      const w = this.#waiting.shift()!;
      this.#push(w.item);
      w.admit();
    }
  }
}
