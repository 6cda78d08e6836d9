/**
 * One crossbar tile: a programmed weight block, its device state at the current age and
 * temperature, drift compensation, and the per-vector DAC → array → noise → ADC sequence.
 * Work buffers are sized on first use and grown only for a larger batch: an MVM allocates nothing.
 */
import type { ConductanceReadout, TileCounters } from '../../runtime/accelerator.js';
import { programBlock, type ProgrammedBlock } from './conductance-map.js';
import type { DeviceModel } from './device-model.js';
import { conductancesAt, evaluate, type DeviceState } from './device-state.js';
import { mvmRows, mvmRowsPair } from './kernels.js';
import type { Periphery } from './periphery.js';
import type { DeviceProfile } from './profile.js';
import { Random } from './random.js';

/** aihwkit GlobalDriftCompensation clamps read-outs at 1e-4 so a dead array cannot divide by 0. */
const MIN_READOUT = 1e-4;

export interface TileContext {
  profile: DeviceProfile;
  device: DeviceModel;
  periphery: Periphery;
  /** Every non-ideality off: the tile computes x·W from the weights themselves. */
  exact: boolean;
}

export class Tile {
  readonly counters: TileCounters;
  #block: ProgrammedBlock | null = null;
  #exactWeights: Float32Array | null = null;
  #state: DeviceState | null = null;
  #age = 0;
  #kelvin: number;
  /** Mean |output| per column of the calibration read right after programming. */
  #gdcReference = new Float64Array(0);
  #gdc = new Float32Array(0);
  #xq = new Float64Array(0);
  #xq2 = new Float64Array(0);
  #acc = new Float64Array(0);
  #variance = new Float64Array(0);
  #converted = new Float64Array(0);
  #readout = new Float64Array(0);
  /** Per-vector work buffers of the two-vector kernels (A and B halves of one allocation each). */
  #pair = emptyPair();
  #out = new Float32Array(0);
  #outView = new Float32Array(0);
  readonly #programRng: Random;
  readonly #readRng: Random;

  constructor(readonly id: number, private readonly ctx: TileContext, seed: number, kelvin: number) {
    this.counters = { tileId: id, mvms: 0, macs: 0, dacConversions: 0, adcConversions: 0, cellsProgrammed: 0 };
    // Separate streams: how often a tile is read does not change what the next program() draws.
    this.#programRng = Random.stream(seed, 2 * id);
    this.#readRng = Random.stream(seed, 2 * id + 1);
    this.#kelvin = kelvin;
  }

  get rows(): number {
    return this.#block?.rows ?? 0;
  }

  get cols(): number {
    return this.#block?.cols ?? 0;
  }

  get programmed(): boolean {
    return this.#block !== null;
  }

  /** Writes a block (row-major rows × cols) at die temperature `kelvin`; the tile's age restarts at 0. */
  program(weights: Float32Array, rows: number, cols: number, kelvin: number): void {
    const { profile, device, exact } = this.ctx;
    this.#kelvin = kelvin;
    this.#block = programBlock(weights, rows, cols, profile, device, this.#programRng);
    this.#exactWeights = exact ? weights.slice(0, rows * cols) : null;
    this.counters.cellsProgrammed += 2 * rows * cols;
    this.#age = 0;
    this.#xq = new Float64Array(rows);
    this.#xq2 = new Float64Array(rows);
    this.#acc = new Float64Array(cols);
    this.#variance = new Float64Array(cols);
    this.#converted = new Float64Array(cols);
    this.#readout = new Float64Array(cols);
    this.#pair = allocatePair(rows, cols);
    this.#gdc = new Float32Array(cols).fill(1);
    this.#gdcReference = new Float64Array(cols);
    this.#state = null;
    if (exact) return;
    this.#state = evaluate(this.#block, profile, device, 0, this.#kelvin);
    if (profile.gdc !== 'off') this.#read(this.#gdcReference);
  }

  /** Re-evaluates the devices at a new age (seconds since this tile was programmed) and temperature. */
  update(ageSeconds: number, kelvin: number): void {
    this.#age = ageSeconds;
    this.#kelvin = kelvin;
    if (this.#block && !this.ctx.exact) this.#state = evaluate(this.#block, this.ctx.profile, this.ctx.device, ageSeconds, kelvin, this.#state ?? undefined);
  }

  /** Drift compensation: a calibration read now, outputs scaled by reference / now. */
  calibrate(): void {
    const mode = this.ctx.profile.gdc;
    if (mode === 'off' || this.ctx.exact || !this.#block) return;
    const now = this.#readout;
    this.#read(now);
    const ref = this.#gdcReference;
    const cols = this.cols;
    if (mode === 'per-column') {
      for (let c = 0; c < cols; c++) this.#gdc[c] = Math.max(ref[c]!, MIN_READOUT) / Math.max(now[c]!, MIN_READOUT);
    } else {
      let r = 0;
      let n = 0;
      for (let c = 0; c < cols; c++) { r += ref[c]!; n += now[c]!; }
      this.#gdc.fill(Math.max(r / cols, MIN_READOUT) / Math.max(n / cols, MIN_READOUT));
    }
  }

  /** Drift-compensation factors currently applied, per column. */
  get gdcFactors(): Float32Array {
    return this.#gdc.slice();
  }

  conductances(): ConductanceReadout {
    const b = this.#need();
    return { rows: b.rows, cols: b.cols, ...conductancesAt(b, this.ctx.profile, this.ctx.device, this.#age, this.#kelvin) };
  }

  /** y = x·W for `batch` vectors of `rows` inputs; returns a reused batch × cols buffer. */
  mvm(x: Float32Array, batch: number): Float32Array {
    const { rows, cols } = this.#need();
    const size = batch * cols;
    if (this.#out.length < size) this.#out = new Float32Array(size);
    if (this.#outView.length !== size) this.#outView = this.#out.subarray(0, size);
    const out = this.#out;
    let rounds = 0;
    let b = 0;
    if (this.ctx.exact) {
      for (; b + 2 <= batch; b += 2) rounds += this.#exactPair(x, b, out);
      if (b < batch) rounds += this.#exactOne(x, b * rows, out, b * cols);
    } else {
      for (; b + 2 <= batch; b += 2) rounds += this.#analogPair(x, b, out);
      if (b < batch) rounds += this.#analogOne(x, b * rows, out, b * cols);
    }
    const c = this.counters;
    c.mvms += batch;
    c.macs += batch * rows * cols;
    c.dacConversions += rounds * rows;
    c.adcConversions += rounds * cols;
    return this.#outView;
  }

  #exactOne(x: Float32Array, xOff: number, out: Float32Array, yOff: number): number {
    const { rows, cols } = this;
    const xq = this.#xq;
    const acc = this.#acc;
    for (let r = 0; r < rows; r++) xq[r] = x[xOff + r]!;
    mvmRows(this.#exactWeights!, rows, cols, xq, acc);
    for (let c = 0; c < cols; c++) out[yOff + c] = acc[c]!;
    return 1;
  }

  /** Vectors b and b + 1. */
  #exactPair(x: Float32Array, b: number, out: Float32Array): number {
    const { rows, cols } = this;
    const { xa, xb, acca, accb } = this.#pair;
    const xo = b * rows;
    for (let r = 0; r < rows; r++) {
      xa[r] = x[xo + r]!;
      xb[r] = x[xo + rows + r]!;
    }
    mvmRowsPair(this.#exactWeights!, rows, cols, xa, xb, acca, accb);
    const yo = b * cols;
    for (let c = 0; c < cols; c++) {
      out[yo + c] = acca[c]!;
      out[yo + cols + c] = accb[c]!;
    }
    return 2;
  }

  /** One input vector through DAC, array and ADC; returns the conversion rounds it took. */
  #analogOne(x: Float32Array, xOff: number, out: Float32Array, yOff: number): number {
    const xmax = absMax(x, xOff, this.rows);
    if (xmax === 0 || !(xmax < Infinity)) return this.#special(xmax, out, yOff);
    return this.#rounds(x, xOff, xmax, 1, out, yOff);
  }

  /** Vectors b and b + 1 share the first array pass; one that saturates continues on its own. */
  #analogPair(x: Float32Array, b: number, out: Float32Array): number {
    const { rows, cols } = this;
    const offA = b * rows;
    const offB = offA + rows;
    const yA = b * cols;
    const yB = yA + cols;
    const ma = absMax(x, offA, rows);
    const mb = absMax(x, offB, rows);
    if (!(ma > 0 && ma < Infinity && mb > 0 && mb < Infinity)) return this.#analogOne(x, offA, out, yA) + this.#analogOne(x, offB, out, yB);
    const per = this.ctx.periphery;
    const p = this.#pair;
    const { w, readVar } = this.#state!;
    per.quantiseInputs(x, offA, rows, 1 / ma, p.xa);
    per.quantiseInputs(x, offB, rows, 1 / mb, p.xb);
    mvmRowsPair(w, rows, cols, p.xa, p.xb, p.acca, p.accb);
    if (readVar) {
      square(p.xa, p.qa, rows);
      square(p.xb, p.qb, rows);
      mvmRowsPair(readVar, rows, cols, p.qa, p.qb, p.vara, p.varb);
    }
    const satA = per.convert(p.acca, readVar ? p.vara : null, cols, this.#readRng, p.conva);
    const satB = per.convert(p.accb, readVar ? p.varb : null, cols, this.#readRng, p.convb);
    const again = per.boundManagement && 1 <= per.maxReduction;
    let rounds = 2;
    if (satA && again) rounds += this.#rounds(x, offA, ma, 2, out, yA); else this.#finish(p.conva, ma, out, yA);
    if (satB && again) rounds += this.#rounds(x, offB, mb, 2, out, yB); else this.#finish(p.convb, mb, out, yB);
    return rounds;
  }

  /** Conversion rounds from input reduction `reduction` on, halving the inputs while outputs saturate. */
  #rounds(x: Float32Array, xOff: number, xmax: number, reduction: number, out: Float32Array, yOff: number): number {
    const { rows, cols } = this;
    const per = this.ctx.periphery;
    const { w, readVar } = this.#state!;
    const xq = this.#xq;
    const acc = this.#acc;
    const variance = this.#variance;
    const conv = this.#converted;
    let rounds = 0;
    for (;;) {
      rounds++;
      per.quantiseInputs(x, xOff, rows, 1 / (xmax * reduction), xq); // ABS_MAX noise management
      mvmRows(w, rows, cols, xq, acc);
      if (readVar) {
        square(xq, this.#xq2, rows);
        mvmRows(readVar, rows, cols, this.#xq2, variance); // column noise variance Σ x_r²·σ²_rc
      }
      const saturated = per.convert(acc, readVar ? variance : null, cols, this.#readRng, conv);
      if (!saturated || !per.boundManagement || reduction > per.maxReduction) break;
      reduction *= 2;
    }
    this.#finish(conv, xmax * reduction, out, yOff);
    return rounds;
  }

  /** Back to model units: undo the input scaling, the weight scale and drift. */
  #finish(conv: Float64Array, back: number, out: Float32Array, yOff: number): void {
    const scale = this.#block!.scale;
    const gdc = this.#gdc;
    for (let c = 0; c < this.cols; c++) out[yOff + c] = conv[c]! * back * scale[c]! * gdc[c]!;
  }

  /** All-zero input: zero output, as aihwkit's short-cut; NaN or ±Infinity in: NaN out. */
  #special(xmax: number, out: Float32Array, yOff: number): number {
    out.fill(xmax === 0 ? 0 : NaN, yOff, yOff + this.cols);
    return 1;
  }

  /**
   * Calibration read (aihwkit drift compensation): the array on the one-hot inputs e_0 … e_rows−1,
   * through the same noise and ADC, mean |output| per column into `into`. A one-hot input passes
   * the DAC exactly and makes the array output row r of the effective weights, so the rows are
   * read directly instead of running `rows` full MVMs.
   */
  #read(into: Float64Array): void {
    const { rows, cols } = this;
    const { w, readVar } = this.#state!;
    const acc = this.#acc;
    const variance = this.#variance;
    const conv = this.#converted;
    into.fill(0, 0, cols);
    for (let r = 0; r < rows; r++) {
      const off = r * cols;
      for (let c = 0; c < cols; c++) acc[c] = w[off + c]!;
      if (readVar) for (let c = 0; c < cols; c++) variance[c] = readVar[off + c]!;
      this.ctx.periphery.convert(acc, readVar ? variance : null, cols, this.#readRng, conv);
      for (let c = 0; c < cols; c++) into[c] = into[c]! + Math.abs(conv[c]!);
    }
    for (let c = 0; c < cols; c++) into[c] = into[c]! / rows;
  }

  #need(): ProgrammedBlock {
    if (!this.#block) throw new Error(`tile ${this.id} is not programmed`);
    return this.#block;
  }
}

function square(x: Float64Array, into: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) into[i] = x[i]! * x[i]!;
}

/** max |x| over one vector; NaN if it holds a NaN. */
function absMax(x: Float32Array, off: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[off + i]!);
    if (a > m) m = a; else if (a !== a) return NaN;
  }
  return m;
}

interface PairBuffers {
  xa: Float64Array; xb: Float64Array;
  qa: Float64Array; qb: Float64Array;
  acca: Float64Array; accb: Float64Array;
  vara: Float64Array; varb: Float64Array;
  conva: Float64Array; convb: Float64Array;
}

function allocatePair(rows: number, cols: number): PairBuffers {
  const x = new Float64Array(2 * rows);
  const q = new Float64Array(2 * rows);
  const acc = new Float64Array(2 * cols);
  const v = new Float64Array(2 * cols);
  const conv = new Float64Array(2 * cols);
  return {
    xa: x.subarray(0, rows), xb: x.subarray(rows),
    qa: q.subarray(0, rows), qb: q.subarray(rows),
    acca: acc.subarray(0, cols), accb: acc.subarray(cols),
    vara: v.subarray(0, cols), varb: v.subarray(cols),
    conva: conv.subarray(0, cols), convb: conv.subarray(cols),
  };
}

function emptyPair(): PairBuffers {
  return allocatePair(0, 0);
}
