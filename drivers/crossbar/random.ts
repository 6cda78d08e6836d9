/**
 * Seeded randomness for device instances: xoshiro128** (Blackman & Vigna; 128-bit state, passes
 * BigCrush, only 32-bit integer ops so it stays in V8's fast int paths) and standard normals by the
 * ziggurat method (Marsaglia & Tsang, J. Stat. Softw. 2000, 128 layers; ~97 % of draws cost one
 * 32-bit integer, a compare and a multiply — read and output noise need one normal per output).
 * The layer index and the magnitude come from disjoint bits (Doornik 2005's fix of the original).
 * Same seed → same device; different seeds → independent devices.
 */
export class Random {
  /** xoshiro128** state; a typed array keeps the 32-bit words unboxed (no allocation per draw). */
  readonly #s = new Int32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads any seed (even 0 or 1) over the whole state; xoshiro must not start at 0.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = z ^ (z >>> 16);
    }
  }

  /** A generator for stream `stream` of device `seed` (e.g. one per tile and purpose). */
  static stream(seed: number, stream: number): Random {
    return new Random((Math.imul((stream >>> 0) + 1, 0x9e3779b1) ^ Math.imul(seed >>> 0, 0x85ebca77)) >>> 0);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const a = s[0]!;
    const b = s[1]!;
    const c = s[2]! ^ a;
    const d = s[3]! ^ b;
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    s[0] = a ^ d;
    s[1] = b ^ c;
    s[2] = c ^ (b << 9);
    s[3] = rotl(d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() * 2.3283064365386963e-10; // 2^-32
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    const u = this.nextUint32();
    const i = u & 127;
    const h = (u | 0) >> 7; // signed 25-bit magnitude, independent of the layer bits
    if (Math.abs(h) < KN[i]!) return h * WN[i]!;
    return this.#normalSlow(h, i);
  }

  /**
   * out[at..at+n) = standard normals, the ziggurat's fast path written out so that nothing is boxed
   * (a hot loop calling normal() would allocate a heap number per draw when not inlined).
   */
  fillNormals(out: Float64Array, n: number, at = 0): void {
    // The state lives in locals through the loop (written back before a rare slow draw).
    const s = this.#s;
    let a = s[0]!;
    let b = s[1]!;
    let c = s[2]!;
    let d = s[3]!;
    for (let k = 0; k < n; k++) {
      const u = Math.imul(rotl(Math.imul(b, 5), 7), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      const i = u & 127;
      const h = u >> 7;
      if (Math.abs(h) < KN[i]!) {
        out[at + k] = h * WN[i]!;
      } else {
        s[0] = a; s[1] = b; s[2] = c; s[3] = d;
        out[at + k] = this.#normalSlow(h, i);
        a = s[0]!; b = s[1]!; c = s[2]!; d = s[3]!;
      }
    }
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
  }

  /** Copies the generator's state (four i32) to `into` at `at`, e.g. for a WebAssembly kernel. */
  saveState(into: Int32Array, at: number): void {
    const s = this.#s;
    into[at] = s[0]!; into[at + 1] = s[1]!; into[at + 2] = s[2]!; into[at + 3] = s[3]!;
  }

  /** Takes the state back from `from` at `at`. */
  loadState(from: Int32Array, at: number): void {
    const s = this.#s;
    s[0] = from[at]!; s[1] = from[at + 1]!; s[2] = from[at + 2]!; s[3] = from[at + 3]!;
  }

  /** The ziggurat's edges and base strip (rare). */
  #normalSlow(h: number, i: number): number {
    for (;;) {
      const x = h * WN[i]!;
      if (i === 0) {
        // Tail beyond R, by Marsaglia's exponential method.
        let t: number;
        let y: number;
        do {
          t = -Math.log(this.#open()) / R;
          y = -Math.log(this.#open());
        } while (y + y < t * t);
        return h > 0 ? R + t : -R - t;
      }
      if (FN[i]! + this.uniform() * (FN[i - 1]! - FN[i]!) < Math.exp(-0.5 * x * x)) return x;
      const u = this.nextUint32();
      i = u & 127;
      h = (u | 0) >> 7;
      if (Math.abs(h) < KN[i]!) return h * WN[i]!;
    }
  }

  /** Uniform in (0, 1): safe for a logarithm. */
  #open(): number {
    return (this.nextUint32() + 0.5) * 2.3283064365386963e-10;
  }
}

// Ziggurat tables for 128 layers (Marsaglia & Tsang 2000), for 25-bit signed magnitudes.
const R = 3.442619855899;
const M = 2 ** 24;
const KN = new Float64Array(128);
const WN = new Float64Array(128);
const FN = new Float64Array(128);
{
  const v = 9.91256303526217e-3;
  let dn = R;
  let tn = dn;
  const q = v / Math.exp(-0.5 * dn * dn);
  KN[0] = (dn / q) * M;
  KN[1] = 0;
  WN[0] = q / M;
  WN[127] = dn / M;
  FN[0] = 1;
  FN[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(v / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = (dn / tn) * M;
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M;
  }
}

/** KN, WN then FN (128 float64 each): the tables a WebAssembly ziggurat reads. */
export function zigguratTables(): Float64Array {
  const t = new Float64Array(384);
  t.set(KN, 0);
  t.set(WN, 128);
  t.set(FN, 256);
  return t;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
