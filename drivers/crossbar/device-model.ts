/**
 * Conductance non-idealities of one device type, separate from the tiles that use them (as in IBM
 * aihwkit: noise models apart from tiles). Conductances in µS; g_rel = g / g_max.
 */
import type { DeviceProfile } from './profile.js';
import type { Random } from './random.js';

const MIN_G_REL = 1e-6; // keeps ln(g_rel) finite for devices programmed to zero

export class DeviceModel {
  constructor(private readonly p: DeviceProfile) {}

  /** Programmed conductance: target plus conductance-dependent Gaussian noise, clamped at 0. */
  program(target: number, rng: Random): number {
    const { enabled, c } = this.p.programmingNoise;
    if (!enabled) return target;
    const g = target / this.p.gMax;
    const sigma = (c[0] + c[1] * g + c[2] * g * g) * (this.p.gMax / 25);
    return Math.max(0, target + Math.max(0, sigma) * rng.normal());
  }

  /** Drift exponent ν of one device: |N(μ(g_rel), σ(g_rel))|. */
  driftNu(gProg: number, rng: Random): number {
    const { enabled, nuMean, nuStd } = this.p.drift;
    if (!enabled) return 0;
    const lnG = Math.log(Math.max(gProg / this.p.gMax, MIN_G_REL));
    const law = (l: { a: number; b: number; min: number; max: number }): number => Math.min(l.max, Math.max(l.min, l.a * lnG + l.b));
    return Math.abs(law(nuMean) + law(nuStd) * rng.normal());
  }

  /** Multiplicative drift factor ((t + t0)/t0)^−ν at device age t seconds. */
  driftFactor(nu: number, ageSeconds: number): number {
    if (nu === 0 || ageSeconds <= 0) return 1;
    const t0 = this.p.drift.t0;
    return Math.pow((ageSeconds + t0) / t0, -nu);
  }

  /** Relative σ of the accumulated 1/f read noise at age t for a device of conductance g. */
  readNoiseSigma(g: number, ageSeconds: number): number {
    const r = this.p.readNoise;
    if (!r.enabled) return 0;
    const t = Math.max(ageSeconds, 0) + this.p.drift.t0;
    const qs = Math.min(r.qsCoeff / Math.max(Math.pow(Math.max(g / this.p.gMax, 0), r.qsExponent), 1e-3), r.qsMax);
    return qs * Math.sqrt(Math.log((t + r.tRead) / (2 * r.tRead)));
  }

  /** Conductance scale at die temperature T (kelvin). */
  temperatureFactor(kelvin: number): number {
    const t = this.p.temperature;
    return 1 + t.coefficient * (kelvin - t.reference);
  }
}
