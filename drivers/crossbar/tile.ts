/**
 * One crossbar tile: a programmed weight block, its device state at the current age and
 * temperature (in the emulator's arena, where the kernels read it), drift compensation, and the
 * per-vector DAC → array → noise → ADC sequence. An MVM allocates nothing.
 */
import type { ConductanceReadout, TileCounters } from '../../runtime/accelerator.js';
import type { Arena } from './arena.js';
import { programBlock, type ProgrammedBlock } from './conductance-map.js';
import type { DeviceModel } from './device-model.js';
import { conductancesAt, evaluate, type DeviceState } from './device-state.js';
import type { Periphery } from './periphery.js';
import type { DeviceProfile } from './profile.js';
import { Random } from './random.js';
import { sharedWeights } from '../../runtime/shared-weights.js';
import type { BatchAreas, WorkAreas } from './work-areas.js';

/** aihwkit GlobalDriftCompensation clamps read-outs at 1e-4 so a dead array cannot divide by 0. */
const MIN_READOUT = 1e-4;
/** A round is skipped as certainly saturating only when it clears the bound by this many σ. */
const SKIP_SIGMAS = 8;

export interface TileContext {
  profile: DeviceProfile;
  device: DeviceModel;
  periphery: Periphery;
  arena: Arena;
  work: WorkAreas;
  /** Every non-ideality off: the tile computes x·W from the weights themselves (float32, as onnxruntime). */
  exact: boolean;
  /**
   * Lean: the programmed devices (G±, ν: 16 bytes per weight) are dropped once the tile computes
   * and drawn again from the seed when the age or temperature changes (same outputs, more CPU per change).
   */
  lean: boolean;
}

/** What a tile was programmed with: enough to draw its devices again, bit for bit. */
interface Recipe {
  rows: number;
  cols: number;
  /** The block (shared by content, runtime/shared-weights.ts) when the tile is lean, else not kept. */
  weights: Float32Array | null;
  /** The programming stream's state before the draws. */
  rng: Int32Array;
}

export class Tile {
  readonly counters: TileCounters;
  #recipe: Recipe | null = null;
  /** The programmed devices; null while a lean tile has dropped them (see #devices). */
  #block: ProgrammedBlock | null = null;
  /** Columns padded to a multiple of eight (gemm32's column pair). */
  #stride = 0;
  #wPtr = 0;
  #varPtr = 0;
  /** Per column, for the ADC kernel: the weight scale and the drift-compensation factor (f32). */
  #scalePtr = 0;
  #gdcPtr = 0;
  #regionBytes = 0;
  #age = 0;
  #kelvin: number;
  /** Per column: Σ_r |w_rc| and Σ_r readVar_rc at the current state (bound-management bounds). */
  #colAbs = new Float64Array(0);
  #colVar = new Float64Array(0);
  /** Mean |output| per column of the calibration read right after programming. */
  #gdcReference = new Float64Array(0);
  #gdc = new Float32Array(0);
  #converted = new Float64Array(0);
  #readout = new Float64Array(0);
  #out = new Float32Array(0);
  #outView = new Float32Array(0);
  /** The single-vector round in flight: how many inputs nonZero listed, and whether mvm32 has summed their codes. */
  #listed = 0;
  #summed = false;
  /** The column that last surely saturated: #roundSurelySaturates sums it alone first, into #probeSum. */
  #probe = 0;
  #probeSum = 0;
  /** Bound management of a batch: the vectors still saturating, their input reductions, whether this round converts. */
  #pending = new Int32Array(0);
  #reduction = new Float64Array(0);
  #converts = new Uint8Array(0);
  #stillPending = 0;
  /** A batch's vectors that are converted (finite, not all zero), in order (#compactLive). */
  #live = new Int32Array(0);
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
    return this.#recipe?.rows ?? 0;
  }

  get cols(): number {
    return this.#recipe?.cols ?? 0;
  }

  get programmed(): boolean {
    return this.#recipe !== null;
  }

  /** Writes a block (row-major rows × cols) at die temperature `kelvin`; the tile's age restarts at 0. */
  program(weights: Float32Array, rows: number, cols: number, kelvin: number): void {
    const { profile, device, exact, lean } = this.ctx;
    const rng = new Int32Array(4);
    this.#programRng.saveState(rng, 0);
    this.#recipe = { rows, cols, weights: lean ? sharedWeights(weights) : null, rng };
    this.#block = programBlock(weights, rows, cols, profile, device, this.#programRng);
    this.#kelvin = kelvin;
    this.#age = 0;
    this.#probe = 0;
    this.counters.cellsProgrammed += 2 * rows * cols;
    this.#layout(rows, cols, exact ? false : profile.readNoise.enabled);
    this.#converted = new Float64Array(cols);
    this.#readout = new Float64Array(cols);
    this.#colAbs = new Float64Array(cols);
    this.#colVar = new Float64Array(cols);
    this.#gdc = new Float32Array(cols).fill(1);
    this.#gdcReference = new Float64Array(cols);
    this.ctx.arena.f32.set(this.#block.scale, this.#scalePtr >> 2);
    this.#storeGdc();
    if (exact) {
      // The weights themselves, padded: the kernels then compute x·W (float32 sums, as onnxruntime).
      const mem = this.ctx.arena.f32;
      for (let r = 0; r < rows; r++) {
        const at = (this.#wPtr >> 2) + r * this.#stride;
        mem.set(weights.subarray(r * cols, (r + 1) * cols), at);
        mem.fill(0, at + cols, at + this.#stride);
      }
      return;
    }
    this.#evaluate();
    if (profile.gdc !== 'off') this.#read(this.#gdcReference);
  }

  /** Re-evaluates the devices at a new age (seconds since this tile was programmed) and temperature. */
  update(ageSeconds: number, kelvin: number): void {
    this.#age = ageSeconds;
    this.#kelvin = kelvin;
    if (this.#recipe && !this.ctx.exact) this.#evaluate();
  }

  /** A lean tile drops its programmed devices (they are drawn again when next needed); others keep them. */
  dropDevices(): void {
    if (this.#recipe?.weights) this.#block = null;
  }

  /** Drift compensation: a calibration read now, outputs scaled by reference / now. */
  calibrate(): void {
    const mode = this.ctx.profile.gdc;
    if (mode === 'off' || this.ctx.exact || !this.#recipe) return;
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
    this.#storeGdc();
  }

  /** The drift-compensation factors where the ADC kernel reads them. */
  #storeGdc(): void {
    this.ctx.arena.f32.set(this.#gdc, this.#gdcPtr >> 2);
  }

  /** Drift-compensation factors currently applied, per column. */
  get gdcFactors(): Float32Array {
    return this.#gdc.slice();
  }

  conductances(): ConductanceReadout {
    this.#need();
    const b = this.#devices();
    return { rows: b.rows, cols: b.cols, ...conductancesAt(b, this.ctx.profile, this.ctx.device, this.#age, this.#kelvin) };
  }

  /** Gives the tile's arena memory back (the emulator is being disposed or the tile dropped). */
  release(): void {
    this.#freeRegions();
    this.#block = null;
    this.#recipe = null;
  }

  /** y = x·W for `batch` vectors of `rows` inputs (x holds exactly batch × rows: the emulator checks); returns a reused batch × cols buffer. */
  mvm(x: Float32Array, batch: number): Float32Array {
    const { rows, cols } = this.#need();
    const size = batch * cols;
    if (this.#out.length < size) this.#out = new Float32Array(size);
    if (this.#outView.length !== size) this.#outView = this.#out.subarray(0, size);
    const out = this.#out;
    let rounds = 0;
    if (batch === 1) {
      rounds = this.ctx.exact ? this.#exactOne(x, out) : this.#analogOne(x, out);
    } else if (batch > 1) {
      rounds = this.ctx.exact ? this.#exactBatch(x, batch, out) : this.#analogBatch(x, batch, out);
    }
    const c = this.counters;
    c.mvms += batch;
    c.macs += batch * rows * cols;
    c.dacConversions += rounds * rows;
    c.adcConversions += rounds * cols;
    return this.#outView;
  }

  /** One vector, exactly: its non-zero inputs through mvm32. */
  #exactOne(x: Float32Array, out: Float32Array): number {
    const { rows, cols } = this;
    const { arena, work } = this.ctx;
    const a = work.single;
    const f32 = arena.f32;
    f32.set(x, a.x >> 2);
    const n = arena.kernels.nonZero(a.x, rows, a.idx, a.xs, a.xmax);
    arena.kernels.mvm32(this.#wPtr, this.#stride * 4, a.idx, a.xs, n, a.acc, this.#stride >> 2);
    out.set(f32.subarray(a.acc >> 2, (a.acc >> 2) + cols));
    return 1;
  }

  /** A batch, exactly: every vector through gemm32 at once. */
  #exactBatch(x: Float32Array, batch: number, out: Float32Array): number {
    const { rows, cols } = this;
    const { arena, work } = this.ctx;
    const a = work.batch(batch); // may grow the memory: views are taken below
    const f32 = arena.f32;
    f32.set(x, a.x >> 2);
    this.#zeroPadding(a, batch);
    // Whole column pairs: the sums land densely, as the caller wants them.
    const dense = cols % 8 === 0;
    this.#gemm(a.x, a.acc, this.#wPtr, batch, dense ? cols : this.#stride);
    const acc = a.acc >> 2;
    if (dense) {
      out.set(f32.subarray(acc, acc + batch * cols));
    } else {
      for (let b = 0, stride = this.#stride; b < batch; b++) {
        for (let c = 0, from = acc + b * stride, to = b * cols; c < cols; c++) out[to + c] = f32[from + c]!;
      }
    }
    return batch;
  }

  /** One input vector through DAC, array and ADC; returns the conversion rounds it took. */
  #analogOne(x: Float32Array, out: Float32Array): number {
    const { arena, work } = this.ctx;
    const a = work.single;
    arena.f32.set(x, a.x >> 2);
    const n = arena.kernels.nonZero(a.x, this.rows, a.idx, a.xs, a.xmax);
    const xmax = arena.f64[a.xmax >> 3]!;
    if (!converted(xmax)) {
      // As aihwkit, an all-zero input short-cuts to zero; NaN or ±Infinity in gives NaN out.
      out.fill(xmax === 0 ? 0 : NaN, 0, this.cols);
      return 1;
    }
    return this.#analogRounds(xmax, n, out);
  }

  /**
   * A batch: every vector's first round at once — DAC, gemm32 (sums bit-identical to mvm32's),
   * noise and ADC — then the vectors whose outputs saturate go through bound management together.
   */
  #analogBatch(x: Float32Array, batch: number, out: Float32Array): number {
    const { rows, cols } = this;
    const per = this.ctx.periphery;
    const { arena, work } = this.ctx;
    const a = work.batch(batch); // may grow the memory: views are taken below
    const stride = this.#stride;
    const withVar = this.#varPtr !== 0;
    arena.f32.set(x, a.raw >> 2);
    // ABS_MAX noise management and the DAC for every vector (an all-zero or non-finite one enters as zeros)
    arena.kernels.dacBatch(a.raw, rows, batch, per.dacLevels, a.x, a.x2, a.xmax);
    // An all-zero vector outputs exactly 0 whatever the noise (the ADC scales back by |x|max = 0), a
    // non-finite one NaNs: only the others are summed, drawn noise for and converted (as #analogOne).
    const live = this.#compactLive(a, batch, withVar);
    this.#zeroPadding(a, live);
    this.#gemm(a.x, a.acc, this.#wPtr, live, stride);
    if (withVar) this.#gemm(a.x2, a.accVar, this.#varPtr, live, stride); // Σ x_r²·σ²_rc
    this.#noise(a.normals, live * cols, withVar);
    this.#adc(a.acc, withVar ? a.accVar : 0, a.normals, live, a.backs, a.out, a.flags);
    const { f32, f64, i32 } = arena;
    const vectors = this.#live;
    if (live === batch) {
      out.set(f32.subarray(a.out >> 2, (a.out >> 2) + batch * cols));
    } else {
      // Run by run (image backgrounds are contiguous runs of patches): a copy per run of converted
      // vectors, a fill per gap, NaN over the gap's non-finite vectors.
      const outAt = a.out >> 2;
      for (let j = 0, b = 0; b < batch;) {
        const end = j < live ? vectors[j]! : batch;
        if (b < end) {
          out.fill(0, b * cols, end * cols);
          for (; b < end; b++) if (f64[(a.xmax >> 3) + b] !== 0) out.fill(NaN, b * cols, (b + 1) * cols);
          continue;
        }
        let n = 1;
        while (j + n < live && vectors[j + n] === b + n) n++;
        out.set(f32.subarray(outAt + j * cols, outAt + (j + n) * cols), b * cols);
        j += n;
        b += n;
      }
    }
    // The hardware converts every vector, all-zero ones included: they count as one round each.
    if (!per.boundManagement || 1 > per.maxReduction) return batch;
    // Saturated: bound management takes these vectors on, each at its own input reduction.
    let rounds = batch;
    let n = 0;
    if (this.#pending.length < batch) { this.#pending = new Int32Array(batch); this.#reduction = new Float64Array(batch); this.#converts = new Uint8Array(batch); }
    for (let j = 0; j < live; j++) {
      if (!i32[(a.flags >> 2) + j]) continue;
      const b = vectors[j]!;
      let next = 2;
      while (next <= per.maxReduction && this.#certainlySaturates(1 / next, true, (a.acc >> 2) + j * stride, (a.accVar >> 2) + j * stride)) { rounds++; next *= 2; }
      this.#pending[n] = b;
      this.#reduction[n++] = next;
    }
    while (n > 0) {
      rounds += this.#boundRound(a, n, out);
      n = this.#stillPending;
    }
    return rounds;
  }

  /**
   * One bound-management round for the `n` pending vectors of a batch together, with the decisions
   * #analogRounds makes for one vector: DAC at each vector's reduction, gemm32, then noise and ADC
   * for those not surely saturating; finished vectors' outputs go to `out`, the rest stay pending
   * (first #stillPending entries) at their next reduction. Returns the conversion rounds.
   */
  #boundRound(a: BatchAreas, n: number, out: Float32Array): number {
    const { rows, cols } = this;
    const per = this.ctx.periphery;
    const { arena } = this.ctx;
    const kernels = arena.kernels;
    const stride = this.#stride;
    const withVar = this.#varPtr !== 0;
    const pending = this.#pending;
    const reduction = this.#reduction;
    const converts = this.#converts;
    const { f64, i32 } = arena;
    let rounds = n;
    for (let j = 0; j < n; j++) {
      const b = pending[j]!;
      i32[(a.picks >> 2) + j] = b;
      f64[(a.invs >> 3) + j] = 1 / (f64[(a.xmax >> 3) + b]! * reduction[j]!);
    }
    kernels.dacPicked(a.raw, rows, n, a.picks, a.invs, per.dacLevels, a.x, a.x2);
    this.#zeroPadding(a, n);
    this.#gemm(a.x, a.acc, this.#wPtr, n, stride);
    for (let j = 0; j < n; j++) {
      // A round bound management will repeat anyway needs no noise once its outputs clear the bound by 8σ.
      const more = reduction[j]! <= per.maxReduction;
      converts[j] = more && this.#certainlySaturates(1, false, (a.acc >> 2) + j * stride, (a.accVar >> 2) + j * stride) ? 0 : 1;
      f64[(a.backs >> 3) + j] = converts[j] ? f64[(a.xmax >> 3) + pending[j]!]! * reduction[j]! : 0;
    }
    if (withVar) this.#gemm(a.x2, a.accVar, this.#varPtr, n, stride);
    this.#noise(a.normals, n * cols, withVar);
    this.#adc(a.acc, withVar ? a.accVar : 0, a.normals, n, a.backs, a.out, a.flags);
    const f32 = arena.f32;
    let m = 0;
    for (let j = 0; j < n; j++) {
      const b = pending[j]!;
      const r = reduction[j]!;
      const more = r <= per.maxReduction;
      if (converts[j] && (!i32[(a.flags >> 2) + j] || !more)) {
        out.set(f32.subarray((a.out >> 2) + j * cols, (a.out >> 2) + (j + 1) * cols), b * cols);
        continue;
      }
      // Rounds that would saturate for certain are counted (the hardware performs them) but not computed.
      let next = r * 2;
      while (next <= per.maxReduction && this.#certainlySaturates(r / next, converts[j] === 1, (a.acc >> 2) + j * stride, (a.accVar >> 2) + j * stride)) { rounds++; next *= 2; }
      pending[m] = b;
      reduction[m++] = next;
    }
    this.#stillPending = m;
    return rounds;
  }

  /**
   * Lists the batch's vectors with a finite, non-zero |x|max in #live, moves their DAC codes (and
   * squares, `withVar`) to the front of the batch areas in that order and their |x|max to `backs`;
   * returns how many.
   */
  #compactLive(a: BatchAreas, batch: number, withVar: boolean): number {
    const rows = this.rows;
    const { f32, f64 } = this.ctx.arena;
    if (this.#live.length < batch) this.#live = new Int32Array(batch);
    const x = a.x >> 2;
    const x2 = a.x2 >> 2;
    const xmax = a.xmax >> 3;
    let live = 0;
    // Run by run (image backgrounds are contiguous runs of patches): one copy per run.
    for (let b = 0; b < batch;) {
      if (!converted(f64[xmax + b]!)) { b++; continue; }
      const start = b;
      for (b++; b < batch && converted(f64[xmax + b]!); b++);
      if (live !== start) {
        f32.copyWithin(x + live * rows, x + start * rows, x + b * rows);
        if (withVar) f32.copyWithin(x2 + live * rows, x2 + start * rows, x2 + b * rows);
      }
      f64.copyWithin((a.backs >> 3) + live, xmax + start, xmax + b);
      for (let v = start; v < b; v++) this.#live[live++] = v;
    }
    return live;
  }

  /** gemm32 of the batch's input vectors at `x` (rows apart) with the matrix at `w` into `acc`, accStride floats apart. */
  #gemm(x: number, acc: number, w: number, batch: number, accStride: number): void {
    const strideBytes = this.#stride * 4;
    this.ctx.arena.kernels.gemm32(x, this.rows * 4, (batch + 3) >> 2, this.rows, w, strideBytes, acc, accStride * 4, this.#stride >> 3);
  }

  /** The vectors that round the batch up to gemm32's block of four enter as zeros. */
  #zeroPadding(a: BatchAreas, batch: number): void {
    const f32 = this.ctx.arena.f32;
    const from = batch * this.rows;
    const to = Math.ceil(batch / 4) * 4 * this.rows;
    f32.fill(0, (a.x >> 2) + from, (a.x >> 2) + to);
    f32.fill(0, (a.x2 >> 2) + from, (a.x2 >> 2) + to);
  }

  /**
   * The listed vector (#analogOne) through conversion rounds until one fits the ADC (bound
   * management halves the inputs each time); returns how many rounds the hardware performs.
   */
  #analogRounds(xmax: number, n: number, out: Float32Array): number {
    const cols = this.cols;
    const per = this.ctx.periphery;
    const { arena, work } = this.ctx;
    const a = work.single;
    const kernels = arena.kernels;
    const strideBytes = this.#stride * 4;
    const vecs = this.#stride >> 2;
    this.#listed = n;
    let reduction = 1;
    let rounds = 0;
    for (;;) {
      rounds++;
      // ABS_MAX noise management and the DAC, for the listed (non-zero) inputs
      kernels.dacScaled(a.xs, n, 1 / (xmax * reduction), per.dacLevels, a.xv, a.xv2);
      this.#summed = false;
      const more = per.boundManagement && reduction <= per.maxReduction;
      // A round bound management will repeat anyway needs no noise once its outputs clear the bound
      // by 8σ: the hardware converts it (counted), the emulator skips the noise and the ADC.
      let varKnown = false;
      if (!(more && this.#roundSurelySaturates())) {
        this.#sum();
        if (this.#varPtr) kernels.mvm32(this.#varPtr, strideBytes, a.idx, a.xv2, n, a.accVar, vecs); // Σ x_r²·σ²_rc
        varKnown = true;
        this.#noise(a.normals, cols, this.#varPtr !== 0);
        arena.f64[a.back >> 3] = xmax * reduction;
        this.#adc(a.acc, this.#varPtr ? a.accVar : 0, a.normals, 1, a.back, a.out, a.flags);
        if (!arena.i32[a.flags >> 2] || !more) break;
      }
      // Bound management halves the inputs; rounds that would saturate for certain are counted
      // (the hardware performs them) but not computed. After a skipped round only what it already
      // knows is used: a round not skipped here gets its own sums, and they decide.
      let next = reduction * 2;
      while (next <= per.maxReduction && (varKnown ? this.#certainlySaturates(reduction / next, true, a.acc >> 2, a.accVar >> 2) : this.#knownToSaturate(reduction / next))) { rounds++; next *= 2; }
      reduction = next;
    }
    out.set(arena.f32.subarray(a.out >> 2, (a.out >> 2) + cols));
    return rounds;
  }

  /**
   * Standard normals for `n` outputs at arena address `at` (zeros when the profile has no noise):
   * the read stream's next draws, Random.fillNormals' sequence, by the normals kernel.
   */
  #noise(at: number, n: number, withVar: boolean): void {
    const { arena, work } = this.ctx;
    if (!this.ctx.periphery.noisy(withVar)) {
      arena.f64.fill(0, at >> 3, (at >> 3) + n);
      return;
    }
    const state = work.rngState >> 2;
    this.#readRng.saveState(arena.i32, state);
    arena.kernels.normals(work.rngState, work.tables, at, n);
    this.#readRng.loadState(arena.i32, state);
  }

  /** The ADC kernel over `batch` conversions (accumulators `stride` apart), outputs in model units. */
  #adc(acc: number, variance: number, normals: number, batch: number, backs: number, out: number, flags: number): void {
    const per = this.ctx.periphery;
    this.ctx.arena.kernels.adc(acc, this.#stride * 4, variance, normals, batch, this.cols, backs, this.#scalePtr, this.#gdcPtr, out, flags,
      per.outputVar, per.adcStep, per.bound);
  }

  /** The one-vector round's sums (mvm32 over the listed codes), unless #roundSurelySaturates already needed them. */
  #sum(): void {
    if (this.#summed) return;
    const a = this.ctx.work.single;
    this.ctx.arena.kernels.mvm32(this.#wPtr, this.#stride * 4, a.idx, a.xv, this.#listed, a.acc, this.#stride >> 2);
    this.#summed = true;
  }

  /**
   * #certainlySaturates(1, false) for the one-vector round before it is summed: the column that
   * decided last time is summed alone first (column32 equals mvm32's sum), and when it clears the
   * bound, so would the full check. Only otherwise are all columns summed. Same decision, and a
   * round bound management repeats usually costs one column instead of a pass over the array.
   */
  #roundSurelySaturates(): boolean {
    const a = this.ctx.work.single;
    const c = this.#probe;
    this.#probeSum = this.ctx.arena.kernels.column32(this.#wPtr, this.#stride * 4, a.idx, a.xv, this.#listed, 4 * c);
    if (this.#columnSaturates(c, this.#probeSum, 1, false, 0)) return true;
    this.#sum();
    return this.#certainlySaturates(1, false, a.acc >> 2, a.accVar >> 2);
  }

  /** #certainlySaturates(f, false) over what the skipped round knows: all columns if summed, else the probed one. */
  #knownToSaturate(f: number): boolean {
    const a = this.ctx.work.single;
    if (this.#summed) return this.#certainlySaturates(f, false, a.acc >> 2, a.accVar >> 2);
    return this.#columnSaturates(this.#probe, this.#probeSum, f, false, 0);
  }

  /**
   * Whether the round at `f` times the inputs of the round whose accumulators are at `accAt`
   * (f = 1: that round itself) saturates whatever the noise: its noise-free output differs from
   * f·(that round's) by at most E_c = 0.75/L·Σ_r|w_rc| (DAC rounding; 0 for the round itself), and
   * its noise variance is below 2·var_c + 2·(0.75/L)²·Σ_r σ²_rc + σ_out² when that round's
   * read-noise variance var_c (at `varAt`) is known, else below Σ_r σ²_rc + σ_out² (inputs ≤ 1).
   */
  #certainlySaturates(f: number, varKnown: boolean, accAt: number, varAt: number): boolean {
    const { f32, kernels } = this.ctx.arena;
    const bound = this.ctx.periphery.bound;
    const cols = this.cols;
    // Most columns are inside the bound, which decides at once: the kernel skips them, the JS checks the rest.
    for (let c = kernels.overBound(4 * accAt, 0, cols, f, bound); c < cols; c = kernels.overBound(4 * accAt, c + 1, cols, f, bound)) {
      if (this.#columnSaturates(c, f32[accAt + c]!, f, varKnown, varAt)) {
        this.#probe = c;
        return true;
      }
    }
    return false;
  }

  /** Column c's part of #certainlySaturates, its sum given. */
  #columnSaturates(c: number, sum: number, f: number, varKnown: boolean, varAt: number): boolean {
    const per = this.ctx.periphery;
    // The margins below are ≥ 0, so a sum inside the bound decides at once (most columns; NaN goes on and fails there too).
    if (Math.abs(sum) * f <= per.bound) return false;
    const d = f === 1 ? 0 : per.dacLevels ? 0.75 / per.dacLevels : 1e-6; // without a DAC only float rounding differs
    const device = this.#varPtr === 0 ? 0 : varKnown ? 2 * this.ctx.arena.f32[varAt + c]! + 2 * d * d * this.#colVar[c]! : this.#colVar[c]!;
    return Math.abs(sum) * f - d * this.#colAbs[c]! - SKIP_SIGMAS * Math.sqrt(device + per.outputVar) > per.bound;
  }

  /**
   * Calibration read (aihwkit drift compensation): the array on the one-hot inputs e_0 … e_rows−1,
   * through the same noise and ADC, mean |output| per column into `into`. A one-hot input passes
   * the DAC exactly and makes the array output row r of the effective weights, so the rows are
   * read directly instead of running `rows` full MVMs.
   */
  #read(into: Float64Array): void {
    const { rows, cols } = this;
    const { arena, work, periphery: per } = this.ctx;
    const mem = arena.f32;
    const w = this.#wPtr >> 2;
    const v = this.#varPtr >> 2;
    const conv = this.#converted;
    const normals = work.single.normals;
    into.fill(0, 0, cols);
    for (let r = 0; r < rows; r++) {
      const at = r * this.#stride;
      this.#noise(normals, cols, this.#varPtr !== 0);
      per.convert(mem, w + at, this.#varPtr ? mem : null, v + at, cols, arena.f64, normals >> 3, conv);
      for (let c = 0; c < cols; c++) into[c] = into[c]! + Math.abs(conv[c]!);
    }
    for (let c = 0; c < cols; c++) into[c] = into[c]! / rows;
  }

  #evaluate(): void {
    const { profile, device, arena } = this.ctx;
    const state: DeviceState = { mem: arena.f32, w: this.#wPtr >> 2, readVar: this.#varPtr ? this.#varPtr >> 2 : null, stride: this.#stride };
    evaluate(this.#devices(), profile, device, this.#age, this.#kelvin, state);
    // Column sums that bound how much bound-management rounds can differ (see #certainlySaturates).
    const { rows, cols } = this;
    const mem = arena.f32;
    this.#colAbs.fill(0);
    this.#colVar.fill(0);
    for (let r = 0; r < rows; r++) {
      const w = state.w + r * this.#stride;
      for (let c = 0; c < cols; c++) this.#colAbs[c] = this.#colAbs[c]! + Math.abs(mem[w + c]!);
      if (state.readVar !== null) {
        const v = state.readVar + r * this.#stride;
        for (let c = 0; c < cols; c++) this.#colVar[c] = this.#colVar[c]! + mem[v + c]!;
      }
    }
  }

  /** Arena regions for a rows × cols block: effective weights and (optionally) read-noise variances. */
  #layout(rows: number, cols: number, withVar: boolean): void {
    const stride = paddedColumns(cols);
    const bytes = rows * stride * 4;
    if (stride !== this.#stride || bytes !== this.#regionBytes || withVar !== (this.#varPtr !== 0) || !this.#wPtr) {
      this.#freeRegions();
      this.#wPtr = this.ctx.arena.alloc(bytes);
      this.#varPtr = withVar ? this.ctx.arena.alloc(bytes) : 0;
      this.#scalePtr = this.ctx.arena.alloc(4 * stride);
      this.#gdcPtr = this.ctx.arena.alloc(4 * stride);
      this.#regionBytes = bytes;
      this.#stride = stride;
    }
  }

  #freeRegions(): void {
    const arena = this.ctx.arena;
    if (this.#wPtr) arena.free(this.#wPtr, this.#regionBytes);
    if (this.#varPtr) arena.free(this.#varPtr, this.#regionBytes);
    if (this.#scalePtr) arena.free(this.#scalePtr, 4 * this.#stride);
    if (this.#gdcPtr) arena.free(this.#gdcPtr, 4 * this.#stride);
    this.#wPtr = 0;
    this.#varPtr = 0;
    this.#scalePtr = 0;
    this.#gdcPtr = 0;
    this.#regionBytes = 0;
  }

  #need(): Recipe {
    if (!this.#recipe) throw new Error(`tile ${this.id} is not programmed`);
    return this.#recipe;
  }

  /** The programmed devices; a lean tile that dropped them draws them again from the recipe (same stream state, same block). */
  #devices(): ProgrammedBlock {
    if (this.#block) return this.#block;
    const { rows, cols, weights, rng } = this.#recipe!;
    const stream = new Random(0);
    stream.loadState(rng, 0);
    this.#block = programBlock(weights!, rows, cols, this.ctx.profile, this.ctx.device, stream);
    return this.#block;
  }
}

/** Whether a vector with this |x|max is converted: an all-zero one outputs 0, a non-finite one NaNs, without a draw. */
function converted(xmax: number): boolean {
  return xmax !== 0 && xmax < Infinity;
}

/** Columns of a block as laid out in the arena: a multiple of eight, gemm32's column pair. */
export function paddedColumns(cols: number): number {
  return Math.ceil(cols / 8) * 8;
}
