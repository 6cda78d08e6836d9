import { describe, expect, it } from 'vitest';
import { Arena } from '../../drivers/crossbar/arena.js';
import { randomMatrix } from './fixtures.js';

describe('crossbar kernels', () => {
  it('column32 sums one column exactly as mvm32 does (SIMD and plain JS)', () => {
    const rows = 37, stride = 16, n = 29;
    const w = randomMatrix(rows, stride, 91, 0.3);
    for (const simd of [true, false]) {
      const arena = new Arena({ simd });
      const at = { w: arena.alloc(4 * rows * stride), idx: arena.alloc(4 * n), xv: arena.alloc(4 * n), acc: arena.alloc(4 * stride) };
      arena.f32.set(w, at.w >> 2);
      for (let k = 0; k < n; k++) {
        arena.i32[(at.idx >> 2) + k] = (k * 7) % rows; // rows in any order, some repeated
        arena.f32[(at.xv >> 2) + k] = Math.fround(Math.cos(k) * 0.9);
      }
      arena.kernels.mvm32(at.w, 4 * stride, at.idx, at.xv, n, at.acc, stride / 4);
      const sums = Array.from({ length: stride }, (_, c) => arena.kernels.column32(at.w, 4 * stride, at.idx, at.xv, n, 4 * c));
      expect(sums, `simd ${simd}`).toEqual(Array.from(arena.f32.subarray(at.acc >> 2, (at.acc >> 2) + stride)));
      expect(new Set(sums).size).toBe(stride);
    }
  });
});
