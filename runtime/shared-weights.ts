/**
 * Weight matrices shared by content across the process. A fleet thread runs hundreds of emulated
 * devices placing the same model: each device's analog layers (runtime/model/partition.ts, kept
 * to program the tiles again) and lean crossbar tiles (drivers/crossbar/tile.ts, kept to re-draw their
 * devices from the seed) hold one copy of each matrix between them, not one each. Entries are
 * weakly held: a matrix nobody holds is collected.
 */
const byHash = new Map<number, WeakRef<Float32Array>[]>();
const collected = new FinalizationRegistry<number>((hash) => {
  const live = byHash.get(hash)?.filter((r) => r.deref() !== undefined) ?? [];
  if (live.length) byHash.set(hash, live);
  else byHash.delete(hash);
});

/** FNV-1a over the values' bits (equal bits, equal block: −0 and 0 are told apart). */
function hashBits(bits: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i]!, 0x01000193);
  return h >>> 0;
}

function bitsOf(w: Float32Array): Uint32Array {
  return new Uint32Array(w.buffer, w.byteOffset, w.length);
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A block with exactly the bits of `weights`, shared with earlier callers; never modify it. */
export function sharedWeights(weights: Float32Array): Float32Array {
  const bits = bitsOf(weights);
  const hash = hashBits(bits);
  const list = byHash.get(hash) ?? [];
  for (const ref of list) {
    const known = ref.deref();
    if (known && sameBits(bits, bitsOf(known))) return known;
  }
  const own = weights.slice();
  list.push(new WeakRef(own));
  byHash.set(hash, list);
  collected.register(own, hash);
  return own;
}
