/**
 * A programmed block evaluated at one device age and die temperature: what the array computes with
 * until the clock or the temperature changes. Drift, temperature and IR drop are folded into the
 * effective weights here, once per change, so an MVM is one pass over `w` (and one over `readVar`).
 */
import type { ProgrammedBlock } from './conductance-map.js';
import type { DeviceModel } from './device-model.js';
import type { DeviceProfile } from './profile.js';
import { applyIrDrop, irDropRho } from './ir-drop.js';

/** Where a tile's effective arrays live: float32 rows of `stride` elements in `mem`. */
export interface DeviceState {
  mem: Float32Array;
  /** Index of the effective normalised weights (G+ − G−)/g_max, rows × stride (padding zero). */
  w: number;
  /**
   * Index of the per-device variance of the pair's 1/f read noise (normalised), or null when read
   * noise is off. Each read draws fresh noise: Σ_r x_r²·readVar_rc is column c's noise variance.
   */
  readVar: number | null;
  stride: number;
}

let scratchPlus = new Float32Array(0);
let scratchMinus = new Float32Array(0);

/** Evaluates `block` at `ageSeconds` since programming and `kelvin` into `into`. */
export function evaluate(block: ProgrammedBlock, p: DeviceProfile, device: DeviceModel, ageSeconds: number, kelvin: number, into: DeviceState): void {
  const { rows, cols } = block;
  const { mem, stride } = into;
  const n = rows * cols;
  const rho = irDropRho(p);
  if (rho > 0 && scratchPlus.length < n) {
    scratchPlus = new Float32Array(n);
    scratchMinus = new Float32Array(n);
  }
  const lnT = device.driftLog(ageSeconds);
  const noiseTime = into.readVar === null ? 0 : device.readNoiseTime(ageSeconds);
  const k = Math.max(0, device.temperatureFactor(kelvin)) / p.gMax;
  const { gPlus, gMinus, nuPlus, nuMinus } = block;
  for (let r = 0; r < rows; r++) {
    const w = into.w + r * stride;
    const v = into.readVar === null ? -1 : into.readVar + r * stride;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const gp = gPlus[i]!;
      const gm = gMinus[i]!;
      // G(t) = G_prog·((t + t0)/t0)^−ν, as exp(−ν·ln(...)) with the log shared by all devices.
      const ap = (lnT === 0 ? gp : gp * Math.exp(-nuPlus[i]! * lnT)) * k;
      const am = (lnT === 0 ? gm : gm * Math.exp(-nuMinus[i]! * lnT)) * k;
      if (v >= 0) {
        // σ = |G_drift|·Q_s(G_prog)·sqrt(ln((t + t_read)/(2·t_read))) per device (aihwkit).
        const sp = ap * device.readNoiseQs(gp) * noiseTime;
        const sm = am * device.readNoiseQs(gm) * noiseTime;
        mem[v + c] = sp * sp + sm * sm;
      }
      if (rho > 0) {
        scratchPlus[i] = ap;
        scratchMinus[i] = am;
      } else {
        mem[w + c] = ap - am;
      }
    }
    // Padding columns stay zero, so the kernels can run over whole vectors of four.
    mem.fill(0, w + cols, w + stride);
    if (v >= 0) mem.fill(0, v + cols, v + stride);
  }
  if (rho > 0) {
    applyIrDrop(scratchPlus, scratchMinus, rows, cols, rho);
    for (let r = 0; r < rows; r++) {
      const w = into.w + r * stride;
      for (let c = 0; c < cols; c++) mem[w + c] = scratchPlus[r * cols + c]! - scratchMinus[r * cols + c]!;
    }
  }
}

/** Conductances (µS) at an age and temperature, without IR drop (a circuit, not a device, effect). */
export function conductancesAt(block: ProgrammedBlock, p: DeviceProfile, device: DeviceModel, ageSeconds: number, kelvin: number): { gPlus: Float32Array; gMinus: Float32Array } {
  const n = block.rows * block.cols;
  const lnT = device.driftLog(ageSeconds);
  const k = Math.max(0, device.temperatureFactor(kelvin));
  const gPlus = new Float32Array(n);
  const gMinus = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    gPlus[i] = block.gPlus[i]! * Math.exp(-block.nuPlus[i]! * lnT) * k;
    gMinus[i] = block.gMinus[i]! * Math.exp(-block.nuMinus[i]! * lnT) * k;
  }
  return { gPlus, gMinus };
}
