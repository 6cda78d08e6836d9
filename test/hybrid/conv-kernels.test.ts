import { describe, expect, it } from 'vitest';
import { ConvKernels } from '../../runtime/hybrid/conv-kernels.js';

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

  it('maxPool and averagePool reduce each window of every plane (float32 sum in window order, then one division)', () => {
    const k = new ConvKernels();
    const planes = 3, planeSize = 7, src = 0, starts = 256, offsets = 512, divisors = 768, dst = 1024;
    const x = Float32Array.from({ length: planes * planeSize }, (_, i) => Math.fround(Math.cos(i * 1.7) * 3));
    // three windows per plane, of 2, 3 and 1 elements (element offsets; the kernels take bytes)
    const windows = [[0, 1], [2, 4, 6], [5]];
    const div = Float32Array.from([2, 4, 1]);
    k.f32.set(x, src >> 2);
    k.i32.set([0, 2, 5, 6], starts >> 2);
    k.i32.set(windows.flat().map((o) => 4 * o), offsets >> 2);
    k.f32.set(div, divisors >> 2);
    const f = Math.fround;
    const expectMax: number[] = [], expectAvg: number[] = [];
    for (let p = 0; p < planes; p++) {
      windows.forEach((w, i) => {
        expectMax.push(Math.max(...w.map((o) => x[p * planeSize + o]!)));
        expectAvg.push(f(w.reduce((s, o) => f(s + x[p * planeSize + o]!), 0) / div[i]!));
      });
    }
    k.maxPool(src, planes, 4 * planeSize, 3, starts, offsets, dst);
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 9))).toEqual(expectMax);
    k.averagePool(src, planes, 4 * planeSize, 3, starts, offsets, divisors, dst);
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + 9))).toEqual(expectAvg);
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
