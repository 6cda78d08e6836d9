import { describe, expect, it } from 'vitest';
import { ConvKernels } from '../../runtime/hybrid/conv-kernels.js';
import { halvingMaxPool, poolGeometry, type PoolStage } from '../../runtime/hybrid/periphery-plan.js';

describe('conv kernels (im2col gather, back to channel-major, pooling)', () => {
  it('gather copies the element at each byte offset', () => {
    const k = new ConvKernels();
    const src = 64, offsets = 256, dst = 512;
    k.f32.set([1.5, -2, 3.25, 0], src >> 2);
    k.i32.set([12, 0, 8, 4, 12, 8], offsets >> 2);
    k.gather(src, offsets, 6, dst);
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 6))).toEqual([0, 1.5, 3.25, -2, 0, 3.25]);
  });

  it('toChannels transposes positions × channels to channels × positions and adds each channel\'s bias as float32', () => {
    const k = new ConvKernels();
    const positions = 5, m = 3, src = 0, bias = 256, dst = 512;
    const y = Float32Array.from({ length: positions * m }, (_, i) => Math.fround(Math.sin(i) * 10));
    const b = Float32Array.from([0.1, -7.3, 1e-3]);
    k.f32.set(y, src >> 2);
    k.f32.set(b, bias >> 2);
    k.toChannels(src, positions, m, bias, dst, -Infinity, Infinity);
    const expected = new Float32Array(positions * m);
    for (let c = 0; c < m; c++) for (let p = 0; p < positions; p++) expected[c * positions + p] = y[p * m + c]! + b[c]!;
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + positions * m))).toEqual(Array.from(expected));
  });

  it('toChannels clamps to [lo, hi] on the way (Relu, Clip), passing NaN and −0 as the JS activations do', () => {
    const k = new ConvKernels();
    const src = 0, bias = 256, dst = 512;
    k.f32.set([-3, -0, 0.5, 7, NaN, 2.5], src >> 2);
    k.f32.set([-0], bias >> 2); // −0 + −0 stays −0
    k.toChannels(src, 6, 1, bias, dst, 0, 6);
    const out = Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 6));
    expect(out.slice(0, 1).concat(out.slice(2, 4), out.slice(5))).toEqual([0, 0.5, 6, 2.5]);
    expect(Object.is(out[1], -0)).toBe(true);
    expect(out[4]).toBeNaN();
  });

  it('toChannels gives the JS loop\'s bits for any channel count (four at a time in SIMD, the rest one by one), clamped or not', () => {
    const k = new ConvKernels();
    const positions = 9, src = 0, bias = 1024, dst = 2048;
    for (const m of [4, 8, 11]) {
      const y = Float32Array.from({ length: positions * m }, (_, i) => Math.fround(Math.sin(i * 0.7) * 9));
      y[5] = NaN;
      y[m + 1] = -0;
      y[2 * m + 2] = Infinity;
      const b = Float32Array.from({ length: m }, (_, c) => (c % 3 === 1 ? -0 : Math.fround(Math.cos(c))));
      k.f32.set(y, src >> 2);
      k.f32.set(b, bias >> 2);
      for (const [lo, hi] of [[-Infinity, Infinity], [0, Infinity], [-1, 6]] as const) {
        k.toChannels(src, positions, m, bias, dst, lo, hi);
        const expected = new Float32Array(positions * m);
        for (let c = 0; c < m; c++) {
          for (let p = 0; p < positions; p++) {
            let v = Math.fround(y[p * m + c]! + b[c]!);
            v = v < lo ? lo : v;
            expected[c * positions + p] = v > hi ? hi : v;
          }
        }
        const got = k.f32.subarray(dst >> 2, (dst >> 2) + positions * m);
        expect(Array.from(got).findIndex((v, i) => !Object.is(v, expected[i])), `m ${m}, [${lo}, ${hi}]`).toBe(-1);
      }
    }
  });

  it('maxPool takes the max of each window of every plane; averagePool sums its groups in order, adds the term, divides once', () => {
    const k = new ConvKernels();
    const planes = 3, planeSize = 7, src = 0, starts = 256, groups = 384, offsets = 512, terms = 640, divisors = 768, dst = 1024;
    const x = Float32Array.from({ length: planes * planeSize }, (_, i) => Math.fround(Math.cos(i * 1.7) * 3));
    x[3] = -0; // a window of only −0: the term decides the sign of its zero sum
    // three windows per plane: two groups [0, 1] [2]; one group [2, 4, 6] then [5]; one group [3] (element offsets; the kernels take bytes)
    const windows = [[[0, 1], [2]], [[2, 4, 6], [5]], [[3]]];
    const term = Float32Array.from([0, -0, -0]);
    const div = Float32Array.from([2, 4, 1]);
    k.f32.set(x, src >> 2);
    k.i32.set([0, 2, 4, 5], starts >> 2);
    k.i32.set([0, 2, 3, 6, 7, 8], groups >> 2);
    k.i32.set(windows.flat(2).map((o) => 4 * o), offsets >> 2);
    k.f32.set(term, terms >> 2);
    k.f32.set(div, divisors >> 2);
    const f = Math.fround;
    const expectMax: number[] = [], expectAvg: number[] = [];
    for (let p = 0; p < planes; p++) {
      const at = (o: number): number => x[p * planeSize + o]!;
      windows.forEach((w, i) => {
        expectMax.push(Math.max(...w.flat().map(at)));
        // each group from its first element, then the groups from the first group's sum: ((a + b) + c) ≠ (a + (b + c)) in float32
        const sums = w.map((g) => g.slice(1).reduce((s, o) => f(s + at(o)), at(g[0]!)));
        expectAvg.push(f(f(sums.slice(1).reduce((s, v) => f(s + v), sums[0]!) + term[i]!) / div[i]!));
      });
    }
    k.i32.set([0, 3, 7, 8], (starts >> 2) + 8); // maxPool: windows' starts into the offsets
    k.maxPool(src, planes, 4 * planeSize, 3, starts + 32, offsets, dst);
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 9))).toEqual(expectMax);
    k.averagePool(src, planes, 4 * planeSize, 3, starts, groups, offsets, terms, divisors, dst);
    const avg = Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 9));
    expect(avg).toEqual(expectAvg);
    expect(Object.is(avg[2], -0)).toBe(true); // −0 alone with a −0 term stays −0 (a sum from +0 would give +0)
  });

  it('maxPool2x2 gives maxPool\'s bits on whole 2×2 windows at stride 2 (four outputs at a time, the rest one by one), NaN, ±0 and ties included', () => {
    const k = new ConvKernels();
    const stage: PoolStage = { op: 'MaxPool', kernel: [2, 2], strides: [2, 2], dilations: [1, 1], pads: [0, 0, 0, 0], ceilMode: false, countIncludePad: false };
    for (const [h, w] of [[26, 26], [11, 11], [9, 14], [2, 2], [5, 19]] as const) {
      const pool = poolGeometry(stage, [h, w]);
      if (typeof pool === 'string') throw new Error(pool);
      expect(halvingMaxPool(stage, [h, w], pool.outSpatial)).toBe(true);
      const planes = 3, planeSize = h * w, src = 0;
      const starts = 4 * planes * planeSize, offsets = starts + 4 * (pool.positions + 1), general = offsets + 4 * pool.offsets.length, fast = general + 4 * planes * pool.positions;
      k.reserve(fast + 4 * planes * pool.positions);
      // values from a few levels (ties), with NaN, −0 and +0 sprinkled over the windows
      const special = [NaN, -0, 0, -0, Infinity, -Infinity];
      const x = Float32Array.from({ length: planes * planeSize }, (_, i) => (i % 7 === 3 ? special[(i >> 3) % special.length]! : Math.round(Math.sin(i * 1.3) * 3) / 2));
      k.f32.set(x, src >> 2);
      k.i32.set(pool.starts.map((g) => pool.groups[g]!), starts >> 2);
      k.i32.set(Array.from(pool.offsets, (o) => 4 * o), offsets >> 2);
      k.maxPool(src, planes, 4 * planeSize, pool.positions, starts, offsets, general);
      k.maxPool2x2(src, planes, 4 * planeSize, 4 * w, pool.outSpatial[0]!, pool.outSpatial[1]!, fast);
      const a = k.f32.subarray(general >> 2, (general >> 2) + planes * pool.positions);
      const b = k.f32.subarray(fast >> 2, (fast >> 2) + planes * pool.positions);
      expect(Array.from(b).findIndex((v, i) => !Object.is(v, a[i])), `${h}×${w}`).toBe(-1);
      expect(a.some(Number.isNaN) && a.some((v) => Object.is(v, -0)), `${h}×${w} exercises NaN and −0`).toBe(h * w > 20);
    }
    // Windows that are not whole 2×2 at stride 2 stay with maxPool.
    expect(halvingMaxPool({ ...stage, strides: [1, 1] }, [6, 6], [5, 5])).toBe(false);
    expect(halvingMaxPool({ ...stage, pads: [0, 0, 1, 1] }, [5, 5], [3, 3])).toBe(false);
    expect(halvingMaxPool({ ...stage, ceilMode: true }, [5, 5], [3, 3])).toBe(false);
    expect(halvingMaxPool({ ...stage, op: 'AveragePool' }, [6, 6], [3, 3])).toBe(false);
  });

  it('reserve grows the memory and renews the views, keeping the contents', () => {
    const k = new ConvKernels();
    k.f32[3] = 42;
    const before = k.f32;
    k.reserve(5 * 65536 + 1);
    expect(k.f32.byteLength).toBeGreaterThanOrEqual(5 * 65536 + 1);
    expect(before.byteLength).toBe(0); // the old view is detached: holders must take k.f32 again
    expect(k.f32[3]).toBe(42);
  });
});
