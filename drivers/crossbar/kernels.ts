/**
 * The MVM kernels in plain JavaScript, for engines without WebAssembly SIMD: the same signature
 * and memory layout as wasm-kernels.ts (byte addresses into the arena), rows outer over the list
 * of active rows, four rows per pass over the per-column accumulators.
 */
import type { Arena } from './arena.js';
import type { Kernels } from './wasm-kernels.js';

export function kernels(arena: Arena): Kernels {
  return {
    simd: false,
    mvm32: (w, stride, idx, xv, n, acc, vecs) => {
      const { f32, i32 } = arena;
      rows(f32, f32, f32, i32, w >> 2, stride >> 2, idx >> 2, xv >> 2, n, acc >> 2, vecs * 4);
    },
    mvm64: (w, stride, idx, xv, n, acc, vecs) => {
      const { f32, f64, i32 } = arena;
      rows(f32, f64, f64, i32, w >> 2, stride >> 2, idx >> 2, xv >> 3, n, acc >> 3, vecs * 4);
    },
    jobs32: (table, count) => {
      const { f32, i32 } = arena;
      for (let j = 0, t = table >> 2; j < count; j++, t += 7) {
        rows(f32, f32, f32, i32, i32[t]! >> 2, i32[t + 1]! >> 2, i32[t + 2]! >> 2, i32[t + 3]! >> 2, i32[t + 4]!, i32[t + 5]! >> 2, i32[t + 6]! * 4);
      }
    },
  };
}

type Floats = Float32Array | Float64Array;

function rows(wv: Float32Array, xs: Floats, out: Floats, ids: Int32Array, w: number, stride: number, idx: number, xv: number, n: number, acc: number, cols: number): void {
  out.fill(0, acc, acc + cols);
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    const x0 = xs[xv + k]!;
    const x1 = xs[xv + k + 1]!;
    const x2 = xs[xv + k + 2]!;
    const x3 = xs[xv + k + 3]!;
    const o0 = w + ids[idx + k]! * stride;
    const o1 = w + ids[idx + k + 1]! * stride;
    const o2 = w + ids[idx + k + 2]! * stride;
    const o3 = w + ids[idx + k + 3]! * stride;
    for (let c = 0; c < cols; c++) {
      out[acc + c] = out[acc + c]! + x0 * wv[o0 + c]! + x1 * wv[o1 + c]! + x2 * wv[o2 + c]! + x3 * wv[o3 + c]!;
    }
  }
  for (; k < n; k++) {
    const x = xs[xv + k]!;
    const o = w + ids[idx + k]! * stride;
    for (let c = 0; c < cols; c++) out[acc + c] = out[acc + c]! + x * wv[o + c]!;
  }
}
