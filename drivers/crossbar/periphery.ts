/**
 * The converters around an array, as aihwkit's IOParameters forward pass: noise management ABS_MAX
 * (the caller divides each input vector by its |x|max), a DAC of `dac.bits` (sign included: 2^(b−1)−1
 * levels per side, so 7 bits ≙ aihwkit inp_res = 1/126 over [−1, 1]), additive Gaussian output noise,
 * an ADC of `adc.bits` over [−bound, bound] (9 bits ≙ aihwkit out_res = 1/510 with out_bound = 12),
 * and ITERATIVE bound management (re-run with halved inputs while any output saturates).
 */
import type { DeviceProfile } from './profile.js';

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

  /**
   * ADC: out[c] = quantised, bounded (acc[accAt + c] + noise), the noise Gaussian with variance
   * variance[varAt + c] (read noise of the devices; null: none) + σ_out², drawn as σ·normals[normalsAt + c].
   * Returns whether any output saturated.
   */
  convert(acc: Float32Array, accAt: number, variance: Float32Array | null, varAt: number, cols: number, normals: Float64Array, normalsAt: number, out: Float64Array): boolean {
    return adcConvert(this.adcStep, this.bound, this.outputVar, acc, accAt, variance, varAt, cols, normals, normalsAt, out);
  }

  /** Whether convert() draws noise at all (else the normals may be left unset). */
  noisy(withReadNoise: boolean): boolean {
    return withReadNoise || this.outputVar > 0;
  }
}

/**
 * The ADC arithmetic of Periphery.convert with its constants given (step 0: unquantised; bound
 * Infinity: unbounded). The WebAssembly ADC kernel computes exactly this, in the same order.
 */
export function adcConvert(step: number, bound: number, outVar: number, acc: Float32Array, accAt: number, variance: Float32Array | null, varAt: number, cols: number, normals: Float64Array, normalsAt: number, out: Float64Array): boolean {
  // Two branch-free loops (with and without device read noise): this runs once per output.
  const inv = step ? 1 / step : 0;
  const outSigma = Math.sqrt(outVar);
  let saturated = 0;
  if (variance !== null) {
    for (let c = 0; c < cols; c++) {
      let v = acc[accAt + c]! + Math.sqrt(variance[varAt + c]! + outVar) * normals[normalsAt + c]!;
      // Clamp before rounding so a full-scale code (±levels·step) never reads as saturated.
      if (v > bound) { v = bound; saturated = 1; } else if (v < -bound) { v = -bound; saturated = 1; }
      out[c] = step ? Math.floor(v * inv + 0.5) * step : v;
    }
  } else {
    for (let c = 0; c < cols; c++) {
      let v = acc[accAt + c]! + outSigma * normals[normalsAt + c]!;
      if (v > bound) { v = bound; saturated = 1; } else if (v < -bound) { v = -bound; saturated = 1; }
      out[c] = step ? Math.floor(v * inv + 0.5) * step : v;
    }
  }
  return saturated !== 0;
}
