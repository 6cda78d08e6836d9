/**
 * One crossbar tile: a weight block stored as differential conductance pairs, evaluated at the
 * device's current age and temperature, and the fused DAC → MVM → noise → ADC kernel.
 *
 * Everything that does not change between reads (programming noise, drift at the current age,
 * accumulated 1/f read noise, temperature, stuck devices) is folded into `wEff` once per refresh;
 * an MVM then costs one pass over wEff plus O(rows + cols) converter work, with no allocation.
 */
import type { TileCounters } from '../../runtime/accelerator.js';
import type { DeviceProfile } from './profile.js';
import { DeviceModel } from './device-model.js';
import { Random } from './random.js';

const MAX_BOUND_ITERATIONS = 3;

export class Tile {
  readonly counters: TileCounters;
  rows = 0;
  cols = 0;
  #age = 0;
  #kelvin: number;
  /** Weight units per normalised unit, per column. */
  #scale: Float32Array = new Float32Array(0);
  #gpProg: Float32Array = new Float32Array(0);
  #gmProg: Float32Array = new Float32Array(0);
  #nuP: Float32Array = new Float32Array(0);
  #nuM: Float32Array = new Float32Array(0);
  /** 1 where a device is stuck (its conductance never changes). */
  #stuckP: Uint8Array = new Uint8Array(0);
  #stuckM: Uint8Array = new Uint8Array(0);
  /** Effective conductances (µS) and normalised weights (G+ − G−)/g_max at the current age. */
  #gpEff: Float32Array = new Float32Array(0);
  #gmEff: Float32Array = new Float32Array(0);
  #wEff: Float32Array = new Float32Array(0);
  #gdcRef: Float64Array = new Float64Array(0);
  #gdcFactor: Float32Array = new Float32Array(0);
  // Work buffers, grown on demand and reused.
  #xq: Float64Array = new Float64Array(0);
  #acc: Float64Array = new Float64Array(0);
  #out: Float32Array = new Float32Array(0);
  readonly #device: DeviceModel;
  readonly #rngRead: Random;
  readonly #rngOut: Random;
  readonly #exact: boolean;

  constructor(readonly id: number, private readonly p: DeviceProfile, private readonly rng: Random) {
    this.counters = { tileId: id, mvms: 0, macs: 0, dacConversions: 0, adcConversions: 0, cellsProgrammed: 0 };
    this.#device = new DeviceModel(p);
    this.#rngRead = rng.fork();
    this.#rngOut = rng.fork();
    this.#kelvin = p.temperature.initial;
    this.#exact = isExact(p);
  }

  get programmed(): boolean {
    return this.rows > 0;
  }

  program(weights: Float32Array, rows: number, cols: number): void {
    const p = this.p;
    const n = rows * cols;
    this.rows = rows;
    this.cols = cols;
    this.#scale = columnScales(weights, rows, cols, p.weightScale);
    this.#gpProg = new Float32Array(n);
    this.#gmProg = new Float32Array(n);
    this.#nuP = new Float32Array(n);
    this.#nuM = new Float32Array(n);
    this.#stuckP = new Uint8Array(n);
    this.#stuckM = new Uint8Array(n);
    const levels = p.weightBits === null ? 0 : 2 ** (p.weightBits - 1) - 1;
    const { stuckOn, stuckOff } = p.faults;
    const hasFaults = stuckOn + stuckOff > 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        let w = weights[i]! / this.#scale[c]!;
        if (levels) w = Math.round(w * levels) / levels;
        const gp = w > 0 ? w * p.gMax : 0;
        const gm = w < 0 ? -w * p.gMax : 0;
        this.#gpProg[i] = this.#programDevice(gp, hasFaults, this.#stuckP, i);
        this.#gmProg[i] = this.#programDevice(gm, hasFaults, this.#stuckM, i);
        this.#nuP[i] = this.#stuckP[i] ? 0 : this.#device.driftNu(this.#gpProg[i]!, this.rng);
        this.#nuM[i] = this.#stuckM[i] ? 0 : this.#device.driftNu(this.#gmProg[i]!, this.rng);
      }
    }
    this.counters.cellsProgrammed += 2 * n;
    this.#gpEff = new Float32Array(n);
    this.#gmEff = new Float32Array(n);
    this.#wEff = new Float32Array(n);
    this.#gdcRef = new Float64Array(cols);
    this.#gdcFactor = new Float32Array(cols).fill(1);
    this.#age = 0;
    this.refresh();
    // The drift-compensation reference is read right after programming (aihwkit GDC).
    this.#readout(this.#gdcRef);
    this.calibrate();
  }

  #programDevice(target: number, hasFaults: boolean, stuck: Uint8Array, i: number): number {
    if (hasFaults) {
      const u = this.rng.uniform();
      if (u < this.p.faults.stuckOn) { stuck[i] = 1; return this.p.gMax; }
      if (u < this.p.faults.stuckOn + this.p.faults.stuckOff) { stuck[i] = 1; return 0; }
    }
    return this.#device.program(target, this.rng);
  }

  setAge(seconds: number): void {
    this.#age = seconds;
    if (this.programmed) this.refresh();
  }

  setTemperature(kelvin: number): void {
    this.#kelvin = kelvin;
    if (this.programmed) this.refresh();
  }

  /** Folds drift, 1/f read noise and temperature at the current age into the effective weights. */
  refresh(): void {
    const d = this.#device;
    const temp = d.temperatureFactor(this.#kelvin);
    const inv = 1 / this.p.gMax;
    const age = this.#age;
    const n = this.rows * this.cols;
    for (let i = 0; i < n; i++) {
      const gp = this.#effective(this.#gpProg[i]!, this.#nuP[i]!, this.#stuckP[i]!, age) * temp;
      const gm = this.#effective(this.#gmProg[i]!, this.#nuM[i]!, this.#stuckM[i]!, age) * temp;
      this.#gpEff[i] = gp;
      this.#gmEff[i] = gm;
      this.#wEff[i] = (gp - gm) * inv;
    }
  }

  #effective(gProg: number, nu: number, stuck: number, age: number): number {
    if (stuck) return gProg;
    const g = gProg * this.#device.driftFactor(nu, age);
    const sigma = this.#device.readNoiseSigma(g, age);
    return sigma > 0 ? Math.max(0, g + Math.abs(g) * sigma * this.#rngRead.normal()) : g;
  }

  /** Drift compensation: reference / current calibration read, globally or per column. */
  calibrate(): void {
    if (this.p.gdc === 'off') return;
    const now = new Float64Array(this.cols);
    this.#readout(now);
    if (this.p.gdc === 'per-column') {
      for (let c = 0; c < this.cols; c++) this.#gdcFactor[c] = now[c]! > 0 ? this.#gdcRef[c]! / now[c]! : 1;
    } else {
      const ref = this.#gdcRef.reduce((a, b) => a + b, 0);
      const cur = now.reduce((a, b) => a + b, 0);
      this.#gdcFactor.fill(cur > 0 ? ref / cur : 1);
    }
  }

  /** Calibration read: per column, the summed |output| over a one-hot (identity) input batch. */
  #readout(into: Float64Array): void {
    into.fill(0);
    for (let r = 0; r < this.rows; r++) {
      const off = r * this.cols;
      for (let c = 0; c < this.cols; c++) into[c] = into[c]! + Math.abs(this.#wEff[off + c]!);
    }
  }

  conductances(): { gPlus: Float32Array; gMinus: Float32Array } {
    return { gPlus: this.#gpEff.slice(), gMinus: this.#gmEff.slice() };
  }

  /** y = x · W for `batch` vectors of `rows` inputs; returns a reused buffer of batch × cols. */
  mvm(x: Float32Array, batch: number): Float32Array {
    const { rows, cols } = this;
    if (this.#out.length < batch * cols) this.#out = new Float32Array(batch * cols);
    if (this.#xq.length < rows) this.#xq = new Float64Array(rows);
    if (this.#acc.length < cols) this.#acc = new Float64Array(cols);
    const out = this.#out;
    let conversions = 0;
    for (let b = 0; b < batch; b++) {
      if (this.#exact) {
        this.#exactOne(x, b * rows, out, b * cols);
        conversions += 1;
      } else {
        conversions += this.#mvmOne(x, b * rows, out, b * cols);
      }
    }
    this.counters.mvms += batch;
    this.counters.macs += batch * rows * cols;
    this.counters.dacConversions += conversions * rows;
    this.counters.adcConversions += conversions * cols;
    return out.subarray(0, batch * cols);
  }

  #exactOne(x: Float32Array, xOff: number, out: Float32Array, yOff: number): void {
    const { rows, cols } = this;
    const acc = this.#acc;
    const w = this.#wEff;
    acc.fill(0, 0, cols);
    for (let r = 0; r < rows; r++) {
      const xv = x[xOff + r]!;
      if (xv === 0) continue;
      const off = r * cols;
      for (let c = 0; c < cols; c++) acc[c] = acc[c]! + xv * w[off + c]!;
    }
    const scale = this.#scale;
    for (let c = 0; c < cols; c++) out[yOff + c] = acc[c]! * scale[c]!;
  }

  /** The noisy path for one vector; returns how many conversion rounds it took (bound management). */
  #mvmOne(x: Float32Array, xOff: number, out: Float32Array, yOff: number): number {
    const { rows, cols, p } = this;
    const xq = this.#xq;
    const acc = this.#acc;
    let xmax = 0;
    for (let r = 0; r < rows; r++) xmax = Math.max(xmax, Math.abs(x[xOff + r]!));
    if (xmax === 0) {
      out.fill(0, yOff, yOff + cols);
      return 1;
    }
    const dacLevels = p.dac.bits === null ? 0 : 2 ** (p.dac.bits - 1) - 1;
    const bound = p.adc.bound ?? Infinity;
    let inputScale = 1; // halved by iterative bound management while outputs saturate
    let rounds = 0;
    for (;;) {
      rounds++;
      const inv = inputScale / xmax;
      for (let r = 0; r < rows; r++) {
        const v = x[xOff + r]! * inv; // noise management ABS_MAX: |v| ≤ 1
        xq[r] = dacLevels ? Math.round(v * dacLevels) / dacLevels : v;
      }
      if (p.irDrop.enabled) this.#irDropMvm(); else this.#plainMvm();
      let saturated = false;
      for (let c = 0; c < cols; c++) if (Math.abs(acc[c]!) > bound) { saturated = true; break; }
      if (!saturated || p.boundManagement !== 'iterative' || rounds > MAX_BOUND_ITERATIONS) break;
      inputScale *= 0.5;
    }
    const adcLevels = p.adc.bits === null ? 0 : 2 ** (p.adc.bits - 1) - 1;
    const step = adcLevels ? bound / adcLevels : 0;
    const noise = p.outputNoise;
    const rng = this.#rngOut;
    const back = xmax / inputScale;
    const scale = this.#scale;
    const gdc = this.#gdcFactor;
    for (let c = 0; c < cols; c++) {
      let v = acc[c]!;
      if (noise > 0) v += noise * rng.normal();
      if (v > bound) v = bound; else if (v < -bound) v = -bound;
      if (step) v = Math.round(v / step) * step;
      out[yOff + c] = v * back * scale[c]! * gdc[c]!;
    }
    return rounds;
  }

  #plainMvm(): void {
    const { rows, cols } = this;
    const xq = this.#xq;
    const acc = this.#acc;
    const w = this.#wEff;
    acc.fill(0, 0, cols);
    for (let r = 0; r < rows; r++) {
      const xv = xq[r]!;
      if (xv === 0) continue;
      const off = r * cols;
      for (let c = 0; c < cols; c++) acc[c] = acc[c]! + xv * w[off + c]!;
    }
  }

  /**
   * First-order IR drop on the column wires (one fixed-point step of the nodal equations): the ADC
   * sits below the last row; wire segment k carries the current of rows 0..k, so the column node at
   * row i rises by R·Σ_{k≥i} I(0..k) and each device sees its input minus that rise. Both arrays
   * of the differential pair have their own column wire. In normalised units (currents in
   * g_max·V_read) the relative drop is ρ = R·g_max, independent of the read voltage.
   */
  #irDropMvm(): void {
    const { rows, cols } = this;
    const xq = this.#xq;
    const acc = this.#acc;
    const rho = this.p.irDrop.wireResistance * this.p.gMax * 1e-6;
    const invG = 1 / this.p.gMax;
    for (let c = 0; c < cols; c++) {
      acc[c] = columnWithIrDrop(this.#gpEff, xq, rows, cols, c, rho, invG) - columnWithIrDrop(this.#gmEff, xq, rows, cols, c, rho, invG);
    }
  }
}

function columnWithIrDrop(g: Float32Array, v: Float64Array, rows: number, cols: number, c: number, rho: number, invG: number): number {
  // Segment currents (prefix sums of device currents), then node rises (suffix sums of those).
  let cumulative = 0;
  let totalSegment = 0;
  for (let r = 0; r < rows; r++) {
    cumulative += g[r * cols + c]! * invG * v[r]!;
    totalSegment += cumulative;
  }
  let rise = rho * totalSegment; // at row 0: all segments below it
  let cum = 0;
  let out = 0;
  for (let r = 0; r < rows; r++) {
    const a = g[r * cols + c]! * invG;
    out += a * (v[r]! - rise);
    cum += a * v[r]!;
    rise -= rho * cum; // segment r no longer lies below row r + 1
  }
  return out;
}

function columnScales(w: Float32Array, rows: number, cols: number, mode: DeviceProfile['weightScale']): Float32Array {
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) scale[c] = Math.max(scale[c]!, Math.abs(w[r * cols + c]!));
  }
  if (mode === 'per-tile') scale.fill(Math.max(0, ...scale));
  for (let c = 0; c < cols; c++) if (scale[c] === 0) scale[c] = 1;
  return scale;
}

/** A profile with no noise, drift, faults or quantisation computes x·W exactly. */
function isExact(p: DeviceProfile): boolean {
  return !p.programmingNoise.enabled && !p.drift.enabled && !p.readNoise.enabled && p.outputNoise === 0 &&
    p.dac.bits === null && p.adc.bits === null && p.adc.bound === null && p.weightBits === null &&
    p.faults.stuckOn === 0 && p.faults.stuckOff === 0 && !p.irDrop.enabled && p.temperature.coefficient === 0;
}
