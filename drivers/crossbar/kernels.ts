/**
 * The MVM kernels in plain JavaScript, for engines without WebAssembly SIMD: the same signatures,
 * memory layout (byte addresses into the arena) and float32 arithmetic in the same order as
 * wasm-kernels.ts (Math.fround after every multiply and add), so both give bit-identical sums.
 */
import type { Arena } from './arena.js';
import type { Kernels } from './wasm-kernels.js';

const f = Math.fround;

export function kernels(arena: Arena): Kernels {
  return {
    simd: false,
    mvm32: (w, stride, idx, xv, n, acc, vecs) => {
      const { f32, i32 } = arena;
      const cols = vecs * 4;
      const a0 = acc >> 2;
      const w0 = w >> 2;
      const s = stride >> 2;
      f32.fill(0, a0, a0 + cols);
      for (let k = 0; k < n; k++) {
        const x = f32[(xv >> 2) + k]!;
        const row = w0 + i32[(idx >> 2) + k]! * s;
        for (let c = 0; c < cols; c++) f32[a0 + c] = f(f32[a0 + c]! + f(x * f32[row + c]!));
      }
    },
    gemm32: (x, blocks, rows, w, stride, acc, accStride, pairs) => {
      const { f32 } = arena;
      const cols = pairs * 8;
      const s = stride >> 2;
      for (let b = 0; b < blocks; b++) {
        const xb = (x >> 2) + b * rows * 4;
        for (let j = 0; j < 4; j++) {
          const out = ((acc + (4 * b + j) * accStride) >> 2);
          f32.fill(0, out, out + cols);
          for (let r = 0; r < rows; r++) {
            const v = f32[xb + 4 * r + j]!;
            const row = (w >> 2) + r * s;
            for (let c = 0; c < cols; c++) f32[out + c] = f(f32[out + c]! + f(v * f32[row + c]!));
          }
        }
      }
    },
  };
}
