import { describe, expect, it } from 'vitest';
import { Random } from '../../drivers/crossbar/random.js';
import { Arena } from '../../drivers/crossbar/arena.js';
import { WorkAreas } from '../../drivers/crossbar/work-areas.js';

describe('Random (xoshiro128** + ziggurat normals)', () => {
  it('is deterministic per seed, and streams differ', () => {
    const a = new Random(5);
    const b = new Random(5);
    const c = new Random(6);
    const seqA = Array.from({ length: 8 }, () => a.nextUint32());
    expect(Array.from({ length: 8 }, () => b.nextUint32())).toEqual(seqA);
    expect(Array.from({ length: 8 }, () => c.nextUint32())).not.toEqual(seqA);
    expect(Random.stream(1, 0).nextUint32()).not.toBe(Random.stream(1, 1).nextUint32());
    expect(Random.stream(1, 0).nextUint32()).not.toBe(Random.stream(2, 0).nextUint32());
  });

  it('draws uniforms in [0, 1) and standard normals with the right moments and tails', () => {
    const r = new Random(42);
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r.uniform();
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    const n = 400_000;
    const buf = new Float64Array(n);
    r.fillNormals(buf, n / 2);
    for (let i = n / 2; i < n; i++) buf[i] = r.normal();
    let s = 0;
    let s2 = 0;
    let s4 = 0;
    let beyond3 = 0;
    for (const x of buf) {
      s += x;
      s2 += x * x;
      s4 += x ** 4;
      if (Math.abs(x) > 3) beyond3++;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.01);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.1); // Gaussian kurtosis
    expect(beyond3 / n).toBeGreaterThan(0.0022); // P(|x| > 3) = 0.0027
    expect(beyond3 / n).toBeLessThan(0.0032);
  });

  it('the WebAssembly normals kernel draws fillNormals\' sequence bit for bit, wedges and tail included, in chunks of any size', () => {
    const n = 400_000;
    const expected = new Float64Array(n);
    new Random(9).fillNormals(expected, n);
    const arena = new Arena();
    expect(arena.kernels.simd).toBe(true);
    const work = new WorkAreas(arena, 1, 8);
    const out = arena.alloc(8 * n);
    const rng = new Random(9);
    for (let done = 0, size = 1; done < n; done += size, size = Math.min(2 * size + 1, n - done)) {
      rng.saveState(arena.i32, work.rngState >> 2);
      arena.kernels.normals(work.rngState, work.tables, out + 8 * done, size);
      rng.loadState(arena.i32, work.rngState >> 2);
    }
    const got = arena.f64.slice(out >> 3, (out >> 3) + n);
    expect(got.findIndex((x, i) => !Object.is(x, expected[i]))).toBe(-1);
    // The slow path ran: draws beyond the ziggurat's R = 3.44 come only from its tail (P ≈ 5.8e-4).
    expect(got.filter((x) => Math.abs(x) > 3.442619855899).length).toBeGreaterThan(120);
    // The generator continues where the kernel left it.
    expect(rng.nextUint32()).toBe((() => { const r = new Random(9); r.fillNormals(new Float64Array(n), n); return r.nextUint32(); })());
  });
});
