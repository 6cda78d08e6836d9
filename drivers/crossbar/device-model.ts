/**
 * Statistics of one device type, apart from the tiles that use them (as IBM aihwkit keeps its noise
 * models apart from tiles). Formulas of aihwkit's PCMLikeNoiseModel (fitted on measured PCM,
 * Nandakumar et al., ICECS 2019); their constants come from the profile. Conductances in µS.
 */
import type { DeviceProfile } from './profile.js';
import type { Random } from './random.js';

/** aihwkit _ZERO_CLIP: keeps ln(g_rel) finite for devices targeted at 0. */
const ZERO_CLIP = 1e-7;

export class DeviceModel {
  readonly #p: DeviceProfile;
  readonly #progSigma: (g: number) => number;

  constructor(p: DeviceProfile) {
    this.#p = p;
    const { c, gMaxReference, scale } = p.programmingNoise;
    const k = (p.gMax / gMaxReference) * scale;
    const inv = 1 / p.gMax;
    this.#progSigma = (g) => {
      const r = g * inv;
      return Math.max(0, (c[0] + c[1] * r + c[2] * r * r) * k);
    };
  }

  /** Programmed conductance: target plus conductance-dependent Gaussian noise, clamped at 0. */
  program(target: number, rng: Random): number {
    if (!this.#p.programmingNoise.enabled) return target;
    return Math.max(0, target + this.#progSigma(target) * rng.normal());
  }

  /** Drift exponent ν ~ |N(μ_ν(g), σ_ν(g))| of a device programmed towards `target`. */
  driftNu(target: number, rng: Random): number {
    const d = this.#p.drift;
    if (!d.enabled) return 0;
    const lnG = Math.log(Math.max(target / this.#p.gMax, ZERO_CLIP));
    const mu = clamp(d.nuMean.a * lnG + d.nuMean.b, d.nuMean.min, d.nuMean.max);
    const sigma = clamp(d.nuStd.a * lnG + d.nuStd.b, d.nuStd.min, d.nuStd.max);
    return Math.abs(mu + sigma * rng.normal()) * d.scale;
  }

  /** ln((t + t0)/t0) at device age t: drift factor of a device is exp(−ν·this). */
  driftLog(ageSeconds: number): number {
    if (!this.#p.drift.enabled || ageSeconds <= 0) return 0;
    return Math.log((ageSeconds + this.#p.drift.t0) / this.#p.drift.t0);
  }

  /** sqrt(ln((t + t_read)/(2·t_read))) with t = age + t0: the time part of the 1/f read noise. */
  readNoiseTime(ageSeconds: number): number {
    const r = this.#p.readNoise;
    if (!r.enabled) return 0;
    const t = Math.max(ageSeconds, 0) + this.#p.drift.t0;
    return Math.sqrt(Math.max(0, Math.log((t + r.tRead) / (2 * r.tRead)))) * r.scale;
  }

  /** Q_s of a device programmed to gProg: relative 1/f noise strength (before the time part). */
  readNoiseQs(gProg: number): number {
    const r = this.#p.readNoise;
    const rel = Math.max(gProg / this.#p.gMax, 0);
    return Math.min(r.qsCoeff / Math.max(Math.pow(rel, r.qsExponent), r.qsFloor), r.qsMax);
  }

  /** Conductance scale at die temperature T (kelvin). */
  temperatureFactor(kelvin: number): number {
    const t = this.#p.temperature;
    return 1 + t.coefficient * (kelvin - t.reference);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
