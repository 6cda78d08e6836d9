/**
 * Weights → differential conductance pairs. A block's |w|max (per column, or per tile) maps to
 * g_max; positive weights go to G+, negative to G− (the other device of the pair targets 0, as
 * aihwkit's SinglePairConductanceConverter). Programming noise, stuck devices and each device's
 * drift exponent are drawn here, once per program().
 */
import type { DeviceProfile } from './profile.js';
import type { DeviceModel } from './device-model.js';
import type { Random } from './random.js';

export interface ProgrammedBlock {
  rows: number;
  cols: number;
  /** Model units per normalised unit (g/g_max), per column. */
  scale: Float32Array;
  /** Programmed conductances (µS), row-major rows × cols. */
  gPlus: Float32Array;
  gMinus: Float32Array;
  /** Drift exponents ν per device (0 when drift is off or the device is stuck). */
  nuPlus: Float32Array;
  nuMinus: Float32Array;
}

export function programBlock(weights: Float32Array, rows: number, cols: number, p: DeviceProfile, device: DeviceModel, rng: Random): ProgrammedBlock {
  const n = rows * cols;
  const scale = columnScales(weights, rows, cols, p.weightScale);
  const block: ProgrammedBlock = {
    rows, cols, scale,
    gPlus: new Float32Array(n), gMinus: new Float32Array(n), nuPlus: new Float32Array(n), nuMinus: new Float32Array(n),
  };
  const levels = p.weightBits === null ? 0 : 2 ** (p.weightBits - 1) - 1;
  const { stuckOn, stuckOff } = p.faults;
  const stuckAny = stuckOn + stuckOff;
  const gMax = p.gMax;
  const programDevice = (target: number, g: Float32Array, nu: Float32Array, i: number): void => {
    // A stuck device ignores programming and does not drift (a crystalline / erased cell).
    const u = stuckAny > 0 ? rng.uniform() : 1;
    if (u < stuckOn) { g[i] = gMax; nu[i] = 0; return; }
    if (u < stuckAny) { g[i] = 0; nu[i] = 0; return; }
    g[i] = device.program(target, rng);
    nu[i] = device.driftNu(target, rng); // aihwkit draws ν from the target conductance
  };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      let w = weights[i]! / scale[c]!;
      if (levels) w = Math.round(w * levels) / levels;
      programDevice(w > 0 ? w * gMax : 0, block.gPlus, block.nuPlus, i);
      programDevice(w < 0 ? -w * gMax : 0, block.gMinus, block.nuMinus, i);
    }
  }
  return block;
}

/** Per-column |w|max (or the block's, for per-tile scaling); 1 for all-zero columns. */
export function columnScales(w: Float32Array, rows: number, cols: number, mode: DeviceProfile['weightScale']): Float32Array {
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(w[off + c]!);
      if (a > scale[c]!) scale[c] = a;
    }
  }
  if (mode === 'per-tile') scale.fill(scale.reduce((m, v) => Math.max(m, v), 0));
  for (let c = 0; c < cols; c++) if (scale[c] === 0) scale[c] = 1;
  return scale;
}
