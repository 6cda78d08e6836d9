/**
 * A programmed block evaluated at one device age and die temperature: what the array computes with
 * until the clock or the temperature changes. Drift, temperature and IR drop are folded into the
 * effective weights here, once per change, so an MVM is one pass over `w` (and `readVar`).
 */
import type { ProgrammedBlock } from './conductance-map.js';
import type { DeviceModel } from './device-model.js';
import type { DeviceProfile } from './profile.js';
import { applyIrDrop, irDropRho } from './ir-drop.js';

export interface DeviceState {
  /** Effective normalised weights (G+ − G−)/g_max, row-major rows × cols. */
  w: Float32Array;
  /**
   * Variance of the pair's 1/f read noise per device, normalised, or null when read noise is off.
   * Each read draws fresh noise: Σ_r x_r²·readVar_rc is the variance of column c's noise.
   */
  readVar: Float32Array | null;
}

let scratchPlus = new Float32Array(0);
let scratchMinus = new Float32Array(0);

/** Evaluates `block` at `ageSeconds` since programming and `kelvin`, reusing `into`'s arrays. */
export function evaluate(block: ProgrammedBlock, p: DeviceProfile, device: DeviceModel, ageSeconds: number, kelvin: number, into?: DeviceState): DeviceState {
  const n = block.rows * block.cols;
  const w = into && into.w.length === n ? into.w : new Float32Array(n);
  const withNoise = p.readNoise.enabled;
  const readVar = withNoise ? (into?.readVar && into.readVar.length === n ? into.readVar : new Float32Array(n)) : null;
  const rho = irDropRho(p);
  if (rho > 0 && scratchPlus.length < n) {
    scratchPlus = new Float32Array(n);
    scratchMinus = new Float32Array(n);
  }
  const lnT = device.driftLog(ageSeconds);
  const noiseTime = device.readNoiseTime(ageSeconds);
  const k = Math.max(0, device.temperatureFactor(kelvin)) / p.gMax;
  const { gPlus, gMinus, nuPlus, nuMinus } = block;
  for (let i = 0; i < n; i++) {
    const gp = gPlus[i]!;
    const gm = gMinus[i]!;
    // G(t) = G_prog·((t + t0)/t0)^−ν, as exp(−ν·ln(...)) with the log shared by all devices.
    const ap = (lnT === 0 ? gp : gp * Math.exp(-nuPlus[i]! * lnT)) * k;
    const am = (lnT === 0 ? gm : gm * Math.exp(-nuMinus[i]! * lnT)) * k;
    if (readVar) {
      // σ = |G_drift|·Q_s(G_prog)·sqrt(ln((t + t_read)/(2·t_read))) per device (aihwkit).
      const sp = ap * device.readNoiseQs(gp) * noiseTime;
      const sm = am * device.readNoiseQs(gm) * noiseTime;
      readVar[i] = sp * sp + sm * sm;
    }
    if (rho > 0) {
      scratchPlus[i] = ap;
      scratchMinus[i] = am;
    } else {
      w[i] = ap - am;
    }
  }
  if (rho > 0) {
    applyIrDrop(scratchPlus, scratchMinus, block.rows, block.cols, rho);
    for (let i = 0; i < n; i++) w[i] = scratchPlus[i]! - scratchMinus[i]!;
  }
  return { w, readVar };
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
