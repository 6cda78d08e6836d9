/**
 * A set of sequence numbers kept as sorted disjoint ranges. A consumer on a shared subscription
 * sees only some of a device's messages (the broker deals them out); the sets of all consumers,
 * united, say exactly which seqs reached the fleet's consumers and which never did. Seqs arrive
 * nearly in order, so adding one almost always extends the last range.
 */
export class SeqRanges {
  /** [from, to] inclusive pairs, flat, sorted, disjoint and not adjacent. */
  readonly #r: number[] = [];
  #size = 0;

  static from(flat: readonly number[]): SeqRanges {
    const s = new SeqRanges();
    for (let i = 0; i + 1 < flat.length; i += 2) for (let q = flat[i]!; q <= flat[i + 1]!; q++) s.add(q);
    return s;
  }

  get size(): number {
    return this.#size;
  }

  get lowest(): number | undefined {
    return this.#r[0];
  }

  get highest(): number | undefined {
    return this.#r[this.#r.length - 1];
  }

  has(seq: number): boolean {
    const i = this.#find(seq);
    return i >= 0 && seq <= this.#r[2 * i + 1]!;
  }

  /** True when `seq` was not in the set. */
  add(seq: number): boolean {
    const r = this.#r;
    const i = this.#find(seq); // the range starting at or before seq, -1 when none
    if (i >= 0 && seq <= r[2 * i + 1]!) return false;
    this.#size++;
    const joinsLeft = i >= 0 && r[2 * i + 1] === seq - 1;
    const joinsRight = 2 * (i + 1) < r.length && r[2 * (i + 1)] === seq + 1;
    if (joinsLeft && joinsRight) r.splice(2 * i + 1, 2);
    else if (joinsLeft) r[2 * i + 1] = seq;
    else if (joinsRight) r[2 * (i + 1)] = seq;
    else r.splice(2 * (i + 1), 0, seq, seq);
    return true;
  }

  /** Adds every seq of `other`; returns how many were already here. */
  addAll(other: SeqRanges): number {
    let overlap = 0;
    const o = other.toJSON();
    for (let i = 0; i < o.length; i += 2) for (let q = o[i]!; q <= o[i + 1]!; q++) if (!this.add(q)) overlap++;
    return overlap;
  }

  /** The flat [from, to, from, to, …] form. */
  toJSON(): number[] {
    return [...this.#r];
  }

  /** Index of the range whose start is the greatest ≤ seq (binary search from the end, where seqs land). */
  #find(seq: number): number {
    const r = this.#r;
    const n = r.length / 2;
    if (n === 0) return -1;
    if (r[2 * (n - 1)]! <= seq) return n - 1;
    let lo = 0, hi = n - 1; // invariant: start(lo) may be ≤ seq, start(hi) > seq
    if (r[0]! > seq) return -1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (r[2 * mid]! <= seq) lo = mid;
      else hi = mid;
    }
    return lo;
  }
}
