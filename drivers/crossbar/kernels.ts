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
    gemm32: (x, xStride, blocks, rows, w, stride, acc, accStride, pairs) => {
      const { f32 } = arena;
      const cols = pairs * 8;
      const s = stride >> 2;
      for (let v = 0; v < 4 * blocks; v++) {
        const xv = (x + v * xStride) >> 2;
        const out = (acc + v * accStride) >> 2;
        f32.fill(0, out, out + cols);
        for (let r = 0; r < rows; r++) {
          const value = f32[xv + r]!;
          const row = (w >> 2) + r * s;
          for (let c = 0; c < cols; c++) f32[out + c] = f(f32[out + c]! + f(value * f32[row + c]!));
        }
      }
    },
  };
}
