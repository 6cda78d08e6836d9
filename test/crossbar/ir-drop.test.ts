import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { meanAbs, randomMatrix, reference, relError } from './fixtures.js';

/**
 * The crossbar as a resistive network, solved exactly (dense nodal analysis): row wires driven from
 * column 0, G+ and G− side by side on each row wire, one column wire per array ending in the ADC
 * (virtual ground) below the last row, every wire segment `rw` ohms. Returns I+ − I− per column.
 */
function nodalSolve(gPlus: Float64Array, gMinus: Float64Array, rows: number, cols: number, v: Float64Array, rw: number): Float64Array {
  const n = 3 * rows * cols;
  const u = (r: number, c: number) => r * cols + c;
  const p = (r: number, c: number) => rows * cols + r * cols + c;
  const m = (r: number, c: number) => 2 * rows * cols + r * cols + c;
  const a = Array.from({ length: n }, () => new Float64Array(n));
  const b = new Float64Array(n);
  const gw = 1 / rw;
  const link = (i: number, j: number, g: number) => { a[i]![i]! += g; a[j]![j]! += g; a[i]![j]! -= g; a[j]![i]! -= g; };
  const toFixed = (i: number, volts: number, g: number) => { a[i]![i]! += g; b[i]! += g * volts; };
  for (let r = 0; r < rows; r++) {
    toFixed(u(r, 0), v[r]!, gw);
    for (let c = 0; c < cols; c++) {
      if (c + 1 < cols) link(u(r, c), u(r, c + 1), gw);
      link(u(r, c), p(r, c), gPlus[r * cols + c]!);
      link(u(r, c), m(r, c), gMinus[r * cols + c]!);
      if (r + 1 < rows) { link(p(r, c), p(r + 1, c), gw); link(m(r, c), m(r + 1, c), gw); } else { toFixed(p(r, c), 0, gw); toFixed(m(r, c), 0, gw); }
    }
  }
  // Gaussian elimination with partial pivoting.
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i]![k]!) > Math.abs(a[piv]![k]!)) piv = i;
    [a[k], a[piv]] = [a[piv]!, a[k]!];
    [b[k], b[piv]] = [b[piv]!, b[k]!];
    for (let i = k + 1; i < n; i++) {
      const f = a[i]![k]! / a[k]![k]!;
      if (f === 0) continue;
      for (let j = k; j < n; j++) a[i]![j]! -= f * a[k]![j]!;
      b[i]! -= f * b[k]!;
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let j = i + 1; j < n; j++) s -= a[i]![j]! * x[j]!;
    x[i] = s / a[i]![i]!;
  }
  const y = new Float64Array(cols);
  for (let c = 0; c < cols; c++) y[c] = (x[p(rows - 1, c)]! - x[m(rows - 1, c)]!) * gw;
  return y;
}

describe('IR drop', () => {
  it('the first-order model captures most of the exact nodal solution of a small array', async () => {
    const rows = 8;
    const cols = 6;
    const wireResistance = 150; // large, so an 8×6 array drops ~10 %: second-order terms are visible
    const w = randomMatrix(rows, cols, 21, 1);
    const x = Float32Array.from({ length: rows }, (_, i) => 0.2 + ((i * 7) % 5) / 5);
    const emu = new CrossbarEmulator('ideal', { overrides: { irDrop: { enabled: true, wireResistance } } });
    await emu.program(0, w, rows, cols);
    const yModel = await emu.mvm(0, x, 1);
    const { gPlus, gMinus } = await emu.readConductances(0); // µS, |w|max per column → 25 µS
    const scale = new Float64Array(cols);
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) scale[c] = Math.max(scale[c]!, Math.abs(w[r * cols + c]!));
    const toSiemens = (g: Float32Array) => Float64Array.from(g, (v) => v * 1e-6);
    const i = nodalSolve(toSiemens(gPlus), toSiemens(gMinus), rows, cols, Float64Array.from(x), wireResistance);
    // Back to weight units: I = Σ x·G and G = w/scale·g_max.
    const yExact = Float64Array.from(i, (v, c) => (v / 25e-6) * scale[c]!);
    const yLinear = reference(x, w, 1, rows, cols);
    const exactDrop = relError(yExact, yLinear);
    expect(exactDrop).toBeGreaterThan(0.03); // the effect is real at this resistance
    expect(relError(yModel, yExact)).toBeLessThan(0.1 * exactDrop); // measured: 1 % of it
    expect(meanAbs(yModel)).toBeLessThan(meanAbs(yLinear));
  });

  it('is zero-cost per MVM: a 256-row array loses more than a 64-row one, the read voltage cancels', async () => {
    const loss = async (rows: number, readVoltage = 0.4) => {
      const w = new Float32Array(rows * 8).fill(0.5);
      const emu = new CrossbarEmulator('ideal', { overrides: { irDrop: { enabled: true, wireResistance: 0.15, readVoltage } } });
      await emu.program(0, w, rows, 8);
      const y = await emu.mvm(0, new Float32Array(rows).fill(1), 1);
      return 1 - meanAbs(y) / (rows * 0.5);
    };
    const small = await loss(64);
    const big = await loss(256);
    expect(small).toBeGreaterThan(0);
    expect(big).toBeGreaterThan(8 * small); // quadratic in the line length
    expect(await loss(256, 0.2)).toBeCloseTo(big, 12);
  });
});
