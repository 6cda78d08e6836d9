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

  it('overBound finds the columns whose scaled sum leaves the bound (NaN included), exactly as the float64 test |sum|·f ≤ bound, SIMD and plain JS', () => {
    const bound = 2.5;
    const sums = [0.5, -2.5, 2.5000002, 5, -5.0000005, NaN, 1.25, Infinity, -0, -Infinity, 10.000001, 0];
    for (const simd of [true, false]) {
      const arena = new Arena({ simd });
      const acc = arena.alloc(4 * sums.length);
      arena.f32.set(sums, acc >> 2);
      for (const f of [1, 0.5, 0.25]) {
        const expected = sums.map((_, c) => c).filter((c) => !(Math.abs(arena.f32[(acc >> 2) + c]!) * f <= bound));
        const found: number[] = [];
        for (let c = arena.kernels.overBound(acc, 0, sums.length, f, bound); c < sums.length; c = arena.kernels.overBound(acc, c + 1, sums.length, f, bound)) found.push(c);
        expect(found, `simd ${simd}, f ${f}`).toEqual(expected);
        expect(found.length, `f ${f} finds some columns and skips others`).toBeGreaterThan(2);
        expect(found.length).toBeLessThan(sums.length - 2);
      }
      expect(arena.kernels.overBound(acc, 0, 1, 1, bound)).toBe(1); // none within [0, 1): cols
    }
  });
});

describe('crossbar converter kernels', () => {
  /** The bytes at [at, at + bytes) of each arena's memory. */
  const bytes = (arena: Arena, at: number, n: number): Uint8Array => new Uint8Array(arena.memory.buffer, at, n).slice();

  it('DAC (dacBatch, dacScaled, dacPicked) and ADC give the same bits in SIMD and plain JS on NaN, ±Infinity, −0, clamped and odd-sized data', () => {
    const rows = 13, batch = 7, cols = 11, stride = 16;
    const x = Float32Array.from(randomMatrix(batch, rows, 17, 2));
    x[1 * rows + 2] = NaN; // in the SIMD part of |x|max
    x[2 * rows + 12] = NaN; // in its scalar tail
    x[3 * rows + 5] = Infinity;
    x.fill(0, 4 * rows, 5 * rows); // an all-zero vector
    x[5 * rows + 1] = -0;
    x[6 * rows + 3] = -Infinity;
    const acc = randomMatrix(batch, stride, 23, 3); // beyond ±bound (2) in places
    acc[4] = NaN;
    const variance = Float32Array.from(randomMatrix(batch, stride, 29, 0.1), Math.abs);
    const normals = Float64Array.from(randomMatrix(batch, cols, 31, 1));
    const backs = Float64Array.from([0.7, 0, Infinity, NaN, 1.3, 2, 0.25]);
    const gains = Float32Array.from(randomMatrix(1, stride, 37, 0.2), (v) => 1 + v);
    const seen: Uint8Array[][] = [];
    const maxima: number[][] = [];
    for (const simd of [true, false]) {
      const arena = new Arena({ simd });
      const k = arena.kernels;
      const at = {
        x: arena.alloc(4 * rows * batch), codes: arena.alloc(4 * rows * batch), squares: arena.alloc(4 * rows * batch), xmax: arena.alloc(8 * batch),
        acc: arena.alloc(4 * stride * batch), variance: arena.alloc(4 * stride * batch), normals: arena.alloc(8 * cols * batch), backs: arena.alloc(8 * batch),
        scale: arena.alloc(4 * stride), gdc: arena.alloc(4 * stride), out: arena.alloc(4 * cols * batch), flags: arena.alloc(4 * batch),
      };
      arena.f32.set(x, at.x >> 2);
      arena.f32.set(acc, at.acc >> 2);
      arena.f32.set(variance, at.variance >> 2);
      arena.f64.set(normals, at.normals >> 3);
      arena.f64.set(backs, at.backs >> 3);
      arena.f32.set(gains, at.scale >> 2);
      arena.f32.set(gains.map((g) => 2 - g), at.gdc >> 2);
      const run: Uint8Array[] = [];
      for (const levels of [63, 0]) {
        k.dacBatch(at.x, rows, batch, levels, at.codes, at.squares, at.xmax);
        // |x|max as numbers: a NaN's sign bit is the engine's (x64 makes it negative), not the emulator's
        maxima.push(Array.from(arena.f64.subarray(at.xmax >> 3, (at.xmax >> 3) + batch)));
        run.push(bytes(arena, at.codes, 4 * rows * batch), bytes(arena, at.squares, 4 * rows * batch));
        // 3·x/|x|max: codes beyond ±1 are clamped
        k.dacScaled(at.x + 4 * rows * 5, rows, 3 / arena.f64[(at.xmax >> 3) + 5]!, levels, at.codes, at.squares);
        run.push(bytes(arena, at.codes, 4 * rows), bytes(arena, at.squares, 4 * rows));
        // dacPicked: vectors 5, 0 and 6 at their own factors, into consecutive slots
        [5, 0, 6].forEach((v, j) => { arena.i32[(at.flags >> 2) + j] = v; arena.f64[(at.backs >> 3) + j] = (j + 1) / arena.f64[(at.xmax >> 3) + v]!; });
        k.dacPicked(at.x, rows, 3, at.flags, at.backs, levels, at.codes, at.squares);
        run.push(bytes(arena, at.codes, 4 * rows * 3), bytes(arena, at.squares, 4 * rows * 3));
      }
      for (const [variance, step, bound] of [[at.variance, 2 / 127, 2], [0, 2 / 127, 2], [at.variance, 0, Infinity]] as const) {
        k.adc(at.acc, 4 * stride, variance, at.normals, batch, cols, at.backs, at.scale, at.gdc, at.out, at.flags, 0.01, step, bound);
        run.push(bytes(arena, at.out, 4 * cols * batch), bytes(arena, at.flags, 4 * batch));
      }
      seen.push(run);
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(maxima.slice(2)).toEqual(maxima.slice(0, 2));
    // The cases are there: NaN and Infinity maxima, a zero vector, clamped codes, saturated and NaN outputs.
    expect(maxima[0]).toEqual([expect.any(Number), NaN, NaN, Infinity, 0, expect.any(Number), Infinity]);
    const [, , clamped, , , , , , , , , , out, flags] = seen[0]!;
    expect(new Float32Array(clamped!.buffer).filter((v) => v === 1).length).toBeGreaterThan(0);
    expect(Array.from(new Int32Array(flags!.buffer))).toContain(1);
    expect(Array.from(new Float32Array(out!.buffer)).some(Number.isNaN)).toBe(true);
  });
  it('the dense DAC gives the same bits in SIMD and plain JS at every vector length (four inputs at a time, then a pair, then one)', () => {
    const seen: Uint8Array[][] = [];
    for (const simd of [true, false]) {
      const arena = new Arena({ simd });
      const k = arena.kernels;
      const run: Uint8Array[] = [];
      for (let rows = 1; rows <= 11; rows++) {
        const at = { x: arena.alloc(4 * rows), codes: arena.alloc(4 * rows), squares: arena.alloc(4 * rows) };
        arena.f32.set(randomMatrix(1, rows, 41 + rows, 2), at.x >> 2);
        for (const levels of [63, 0]) {
          // 1.5/|x|max: some codes beyond ±1 are clamped
          k.dacScaled(at.x, rows, 1.5, levels, at.codes, at.squares);
          run.push(bytes(arena, at.codes, 4 * rows), bytes(arena, at.squares, 4 * rows));
        }
      }
      seen.push(run);
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0]!.every((b) => b.some((v) => v !== 0))).toBe(true);
  });
  it('the DAC\'s product by 1/levels gives every float32 code and square of the division it replaced, at every resolution a profile allows', () => {
    const f = Math.fround;
    let differing = 0;
    let checked = 0;
    for (let bits = 2; bits <= 24; bits++) {
      const levels = 2 ** (bits - 1) - 1;
      const step = 1 / levels;
      for (let k = -levels; k <= levels; k++, checked++) {
        const divided = k / levels;
        const multiplied = k * step;
        if (f(divided) !== f(multiplied) || f(divided * divided) !== f(multiplied * multiplied)) differing++;
      }
    }
    expect(checked).toBe(2 ** 25 - 27); // Σ (2·levels + 1) = Σ (2^bits − 1) over 2–24 bits
    expect(differing).toBe(0);
  });
});
