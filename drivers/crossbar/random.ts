/**
 * Seeded randomness for device instances: xoshiro128** (fast, 128-bit state, good statistics) and
 * standard normals by the Marsaglia polar method, which yields two per accepted pair and caches one.
 * Same seed → same device; different seeds → independent devices.
 */
export class Random {
  #a: number; #b: number; #c: number; #d: number;
  #spare = 0;
  #hasSpare = false;

  constructor(seed: number) {
    // splitmix32 spreads any seed (even 0 or 1) over the whole state.
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next(); this.#b = next(); this.#c = next(); this.#d = next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a; this.#d ^= this.#b; this.#b ^= this.#c; this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.#spare = v * m;
    this.#hasSpare = true;
    return u * m;
  }

  /** A new independent generator derived from this one (e.g. one per tile). */
  fork(): Random {
    return new Random(this.nextUint32() ^ this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
