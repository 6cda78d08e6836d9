/**
 * A sum over the last `windowMs` of time-stamped amounts (joules), in fixed buckets so adding and
 * summing stay O(1)/O(buckets) however many inferences a window holds. The window edge is exact to
 * one bucket (windowMs / buckets).
 */
export class SlidingWindow {
  readonly #width: number;
  readonly #ids: Float64Array;
  readonly #values: Float64Array;

  constructor(readonly windowMs: number, readonly buckets = 30) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new Error(`a window needs a positive length and ≥ 1 bucket, got ${windowMs} ms / ${buckets}`);
    this.#width = windowMs / buckets;
    this.#ids = new Float64Array(buckets).fill(-Infinity);
    this.#values = new Float64Array(buckets);
  }

  add(ts: number, amount: number): void {
    const id = Math.floor(ts / this.#width);
    const slot = ((id % this.buckets) + this.buckets) % this.buckets;
    if (this.#ids[slot] !== id) {
      this.#ids[slot] = id;
      this.#values[slot] = 0;
    }
    this.#values[slot]! += amount;
  }

  sum(now: number): number {
    const current = Math.floor(now / this.#width);
    let s = 0;
    for (let i = 0; i < this.buckets; i++) {
      const id = this.#ids[i]!;
      if (id <= current && id > current - this.buckets) s += this.#values[i]!;
    }
    return s;
  }
}

/** The largest value seen over the last `windowMs`, in buckets (for the governor's peak-held bias). */
export class SlidingMax {
  readonly #width: number;
  readonly #ids: Float64Array;
  readonly #values: Float64Array;

  constructor(readonly windowMs: number, readonly buckets = 20) {
    this.#width = Math.max(windowMs, 1) / buckets;
    this.#ids = new Float64Array(buckets).fill(-Infinity);
    this.#values = new Float64Array(buckets).fill(-Infinity);
  }

  add(ts: number, value: number): void {
    const id = Math.floor(ts / this.#width);
    const slot = ((id % this.buckets) + this.buckets) % this.buckets;
    if (this.#ids[slot] !== id) {
      this.#ids[slot] = id;
      this.#values[slot] = value;
    } else if (value > this.#values[slot]!) this.#values[slot] = value;
  }

  max(now: number): number {
    const current = Math.floor(now / this.#width);
    let m = -Infinity;
    for (let i = 0; i < this.buckets; i++) {
      const id = this.#ids[i]!;
      if (id <= current && id > current - this.buckets && this.#values[i]! > m) m = this.#values[i]!;
    }
    return m;
  }
}
