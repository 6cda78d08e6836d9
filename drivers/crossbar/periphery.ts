/**
 * The converters around an array, as aihwkit's IOParameters forward pass: noise management ABS_MAX
 * (the caller divides each input vector by its |x|max), a DAC of `dac.bits` (sign included: 2^(b−1)−1
 * levels per side, so 7 bits ≙ aihwkit inp_res = 1/126 over [−1, 1]), additive Gaussian output noise,
 * an ADC of `adc.bits` over [−bound, bound] (9 bits ≙ aihwkit out_res = 1/510 with out_bound = 12),
 * and ITERATIVE bound management (re-run with halved inputs while any output saturates).
 */
import type { DeviceProfile } from './profile.js';
import type { Random } from './random.js';

/** aihwkit IOParameters.max_bm_factor: bound management stops at this input reduction. */
const MAX_BM_FACTOR = 1000;
/** aihwkit IOParameters.max_bm_res: ... or when the reduced input would keep < 2 bits (1/4). */
const MAX_BM_RES = 0.25;

export class Periphery {
  /** DAC levels per side (0: unquantised). */
  readonly dacLevels: number;
  readonly adcStep: number;
  readonly bound: number;
  readonly outputVar: number;
  readonly boundManagement: boolean;
  /** Largest input reduction bound management tries (a power of two is tried while ≤ this). */
  readonly maxReduction: number;

  constructor(p: DeviceProfile) {
    this.dacLevels = p.dac.bits === null ? 0 : 2 ** (p.dac.bits - 1) - 1;
    this.bound = p.adc.bound ?? Infinity;
    this.adcStep = p.adc.bits === null ? 0 : this.bound / (2 ** (p.adc.bits - 1) - 1);
    this.outputVar = p.outputNoise * p.outputNoise;
    this.boundManagement = p.boundManagement === 'iterative' && Number.isFinite(this.bound);
    this.maxReduction = this.dacLevels ? Math.min(MAX_BM_FACTOR, MAX_BM_RES * this.dacLevels) : MAX_BM_FACTOR;
  }

  /** DAC: xq[r] = quantised x[xOff + r]·inv, bounded to [−1, 1]. */
  quantiseInputs(x: Float32Array, xOff: number, rows: number, inv: number, xq: Float64Array): void {
    const levels = this.dacLevels;
    if (levels === 0) {
      for (let r = 0; r < rows; r++) xq[r] = x[xOff + r]! * inv;
      return;
    }
    const step = 1 / levels;
    for (let r = 0; r < rows; r++) {
      let v = Math.round(x[xOff + r]! * inv * levels) * step;
      if (v > 1) v = 1; else if (v < -1) v = -1;
      xq[r] = v;
    }
  }

  /**
   * ADC: out[c] = quantised, bounded (acc[c] + noise), the noise Gaussian with variance
   * variance[c] (read noise of the devices, may be null) + σ_out². Returns whether any output saturated.
   */
  convert(acc: Float64Array, variance: Float64Array | null, cols: number, rng: Random, out: Float64Array): boolean {
    const step = this.adcStep;
    const inv = step ? 1 / step : 0;
    const bound = this.bound;
    const outVar = this.outputVar;
    let saturated = false;
    for (let c = 0; c < cols; c++) {
      let v = acc[c]!;
      const s2 = variance === null ? outVar : variance[c]! + outVar;
      if (s2 > 0) v += Math.sqrt(s2) * rng.normal();
      // Clamp before rounding so a full-scale code (±levels·step) never reads as saturated.
      if (v > bound) { v = bound; saturated = true; } else if (v < -bound) { v = -bound; saturated = true; }
      out[c] = step ? Math.round(v * inv) * step : v;
    }
    return saturated;
  }
}
