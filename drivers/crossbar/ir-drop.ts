/**
 * IR drop: the wires between cells have resistance R per segment (aihwkit IOParametersIRDropT:
 * 0.15 Ω, 0.4 V read), so devices far from the drivers and the ADC see less than the applied voltage.
 *
 * Geometry assumed: row (input) lines are driven from column 0, the two devices of a differential
 * pair sit side by side on the same row line; each array (G+, G−) has its own column (output) lines
 * that end in the ADC below the last row; every row is driven (unused rows at 0 V).
 *
 * Approximation: first order in ρ = R·g_max of the nodal equations (the small-drop regime arrays are
 * designed for), evaluated with the undisturbed currents:
 *  - row line r, node at column c drops by ρ·v_r·Σ_{k≤c} T_rk, T_rk = Σ_{j≥k}(a⁺_rj + a⁻_rj) the
 *    current of segment k (a = G/g_max);
 *  - column line c, node at row i rises by ρ·Σ_{k≥i} J_k, J_k = Σ_{r≤k} a_rc·v_r; summed over the
 *    devices this takes ρ·Σ_r a_rc·v_r·S_rc from the output, S_rc = Σ_{k≥r} Σ_{i≤k} a_ic.
 * Both terms are linear in the inputs (the network is linear), so IR drop is a fixed per-device
 * attenuation a → a/(1 + ρ·(row_rc + S_rc)), computed once per device-state change and free per MVM.
 * The 1/(1 + δ) form equals 1 − δ to first order and stays positive where first order would not
 * (large arrays, where it is only qualitative: it is not a full nodal solution). Attenuation grows
 * with the line currents (conductance) and the distance from driver and ADC, quadratically with the
 * array size. In this linear model the relative drop does not depend on the read voltage, which
 * cancels (ΔV/V_read = R·ΣG·v); `readVoltage` is kept for the energy model. Read noise is not
 * attenuated (second order).
 */
import type { DeviceProfile } from './profile.js';

/** ρ = R·g_max: relative voltage drop per segment per unit of normalised current. */
export function irDropRho(p: DeviceProfile): number {
  return p.irDrop.enabled ? p.irDrop.wireResistance * p.gMax * 1e-6 : 0;
}

let rowDrop = new Float64Array(0);
let colTotal = new Float64Array(0);
let colSuffix = new Float64Array(0);
let colWeighted = new Float64Array(0);

/** Attenuates the normalised conductances aPlus / aMinus (rows × cols, row-major) in place. */
export function applyIrDrop(aPlus: Float32Array, aMinus: Float32Array, rows: number, cols: number, rho: number): void {
  if (rho === 0) return;
  const n = rows * cols;
  if (rowDrop.length < n) rowDrop = new Float64Array(n);
  // Row lines: cumulative drop along the line from the driver.
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let segment = 0;
    for (let c = 0; c < cols; c++) segment += aPlus[off + c]! + aMinus[off + c]!;
    let drop = 0;
    for (let c = 0; c < cols; c++) {
      drop += segment;
      rowDrop[off + c] = drop;
      segment -= aPlus[off + c]! + aMinus[off + c]!;
    }
  }
  attenuateColumns(aPlus, rows, cols, rho);
  attenuateColumns(aMinus, rows, cols, rho);
}

/**
 * S_r = Σ_{k≥r} A_k with A_k = Σ_{i≤k} a_i, rewritten as (n − r)·A_r + Σ_{i>r} a_i·(n − i) so that
 * one backward pass over the rows (row-major, cache-friendly) computes it for every column.
 */
function attenuateColumns(a: Float32Array, rows: number, cols: number, rho: number): void {
  if (colTotal.length < cols) {
    colTotal = new Float64Array(cols);
    colSuffix = new Float64Array(cols);
    colWeighted = new Float64Array(cols);
  }
  colTotal.fill(0, 0, cols);
  colSuffix.fill(0, 0, cols);
  colWeighted.fill(0, 0, cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) colTotal[c] = colTotal[c]! + a[off + c]!;
  }
  for (let r = rows - 1; r >= 0; r--) {
    const off = r * cols;
    const segmentsBelow = rows - r;
    for (let c = 0; c < cols; c++) {
      const v = a[off + c]!;
      const prefix = colTotal[c]! - colSuffix[c]!; // A_r: rows 0..r
      const s = segmentsBelow * prefix + colWeighted[c]!;
      a[off + c] = v / (1 + rho * (rowDrop[off + c]! + s));
      colSuffix[c] = colSuffix[c]! + v;
      colWeighted[c] = colWeighted[c]! + v * segmentsBelow;
    }
  }
}
