/**
 * The kernels in plain JavaScript, for engines without WebAssembly SIMD: the same signatures,
 * memory layout (byte addresses into the arena) and arithmetic in the same order as
 * wasm-kernels.ts (float32 sums with Math.fround after every multiply and add; the ADC is
 * periphery.ts's adcConvert and the normals Random.fillNormals), so both give bit-identical outputs.
 */
import type { Arena } from './arena.js';
import { adcConvert } from './periphery.js';
import { Random } from './random.js';
import type { Kernels } from './wasm-kernels.js';

const f = Math.fround;

/** The DAC: 2·levels + 1 codes over [−1, 1] (levels 0: unquantised), rounding half up. */
function dac(v: number, levels: number): number {
  if (!levels) return v;
  v = Math.floor(v * levels + 0.5) * (1 / levels);
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/** max |x| over n floats from index `from`; NaN if one is NaN. */
function absMax(f32: Float32Array, from: number, n: number): number {
  let m = 0;
  for (let i = from; i < from + n; i++) {
    const a = Math.abs(f32[i]!);
    if (a > m) m = a; else if (a !== a) return NaN;
  }
  return m;
}

/** One vector's DAC codes of x·inv and their squares (byte addresses). */
function denseDac(f32: Float32Array, x: number, rows: number, inv: number, levels: number, out: number, out2: number): void {
  for (let r = 0; r < rows; r++) {
    const v = dac(f32[(x >> 2) + r]! * inv, levels);
    f32[(out >> 2) + r] = v;
    f32[(out2 >> 2) + r] = v * v;
  }
}

export function kernels(arena: Arena): Kernels {
  let converted = new Float64Array(0);
  const generator = new Random(0); // only its state is used, loaded from the arena on each call
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
    column32: (w, stride, idx, xv, n, col) => {
      const { f32, i32 } = arena;
      let s = 0;
      for (let k = 0; k < n; k++) s = f(s + f(f32[(xv >> 2) + k]! * f32[(w + i32[(idx >> 2) + k]! * stride + col) >> 2]!));
      return s;
    },
    nonZero: (x, rows, idx, xs, xmax) => {
      const { f32, f64, i32 } = arena;
      f64[xmax >> 3] = absMax(f32, x >> 2, rows);
      let n = 0;
      for (let r = 0; r < rows; r++) {
        const v = f32[(x >> 2) + r]!;
        if (v !== 0) {
          i32[(idx >> 2) + n] = r;
          f32[(xs >> 2) + n++] = v;
        }
      }
      return n;
    },
    dacBatch: (x, rows, batch, levels, out, out2, xmax) => {
      const { f32, f64 } = arena;
      for (let b = 0, at = 0; b < batch; b++, at += 4 * rows) {
        const m = absMax(f32, (x + at) >> 2, rows);
        f64[(xmax >> 3) + b] = m;
        // an all-zero or non-finite vector enters as zeros
        if (m === 0 || !(m < Infinity)) {
          f32.fill(0, (out + at) >> 2, ((out + at) >> 2) + rows);
          f32.fill(0, (out2 + at) >> 2, ((out2 + at) >> 2) + rows);
        } else {
          denseDac(f32, x + at, rows, 1 / m, levels, out + at, out2 + at);
        }
      }
    },
    dacScaled: (x, rows, inv, levels, out, out2) => denseDac(arena.f32, x, rows, inv, levels, out, out2),
    dacPicked: (x, rows, n, picks, invs, levels, out, out2) => {
      const { f32, f64, i32 } = arena;
      for (let j = 0; j < n; j++) denseDac(f32, x + 4 * rows * i32[(picks >> 2) + j]!, rows, f64[(invs >> 3) + j]!, levels, out + 4 * rows * j, out2 + 4 * rows * j);
    },
    adc: (acc, stride, variance, normals, batch, cols, backs, scale, gdc, out, flags, outVar, step, bound) => {
      const { f32, f64, i32 } = arena;
      if (converted.length < cols) converted = new Float64Array(cols);
      for (let b = 0; b < batch; b++) {
        const back = f64[(backs >> 3) + b]!;
        const o = (out >> 2) + b * cols;
        let saturated = false;
        if (back !== 0 && back < Infinity) {
          saturated = adcConvert(step, bound, outVar, f32, (acc + b * stride) >> 2, variance ? f32 : null, (variance + b * stride) >> 2, cols, f64, (normals >> 3) + b * cols, converted);
          for (let c = 0; c < cols; c++) f32[o + c] = converted[c]! * back * f32[(scale >> 2) + c]! * f32[(gdc >> 2) + c]!;
        } else {
          f32.fill(back === 0 ? 0 : NaN, o, o + cols);
        }
        i32[(flags >> 2) + b] = saturated ? 1 : 0;
      }
    },
    normals: (state, _tables, out, n) => {
      const { f64, i32 } = arena;
      generator.loadState(i32, state >> 2);
      generator.fillNormals(f64, n, out >> 3);
      generator.saveState(i32, state >> 2);
    },
    overBound: (acc, from, cols, factor, bound) => {
      const { f32 } = arena;
      for (let c = from; c < cols; c++) if (!(Math.abs(f32[(acc >> 2) + c]!) * factor <= bound)) return c;
      return cols;
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
