import { describe, expect, it } from 'vitest';
import { ConvKernels } from '../../runtime/hybrid/conv-kernels.js';

describe('conv kernels (im2col gather and back to channel-major)', () => {
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
    k.toChannels(src, positions, m, bias, dst);
    const expected = new Float32Array(positions * m);
    for (let c = 0; c < m; c++) for (let p = 0; p < positions; p++) expected[c * positions + p] = y[p * m + c]! + b[c]!;
    expect(Array.from(k.f32.subarray(dst >> 2, (dst >> 2) + positions * m))).toEqual(Array.from(expected));
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
