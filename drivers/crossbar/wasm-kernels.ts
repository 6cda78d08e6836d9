/**
 * The emulator's kernels as a WebAssembly SIMD module, assembled here from the instruction listings
 * (no toolchain, nothing downloaded: the bytes are built at load time and checked with
 * WebAssembly.validate; without SIMD support the caller falls back to kernels.ts). The MVM kernels
 * are described here; the others where they are assembled: column32 (one column of mvm32's sums),
 * overBound, nonZero, dacBatch, dacScaled, dacPicked, adc and normals (float64 as the JS they replaced, bit for bit; the
 * DAC and ADC two lanes at a time).
 *
 * Weights are float32 rows of `stride` bytes (columns padded with zeros to a multiple of eight).
 * Both MVM kernels add the products into float32 accumulators one row at a time, in row order, so a
 * vector gets bit-identical sums from either (a zero input adds an exact zero).
 *
 *   mvm32(w, stride, idx, xv, n, acc, vecs)  one vector, over its list of active (non-zero) rows:
 *       acc[c] = Σ_k xv[k]·w[idx[k]][c]; eight rows per pass over the columns, so each accumulator
 *       vector is loaded and stored once per eight rows; `vecs` = padded columns / 4.
 *   gemm32(x, xStride, blocks, rows, w, stride, acc, accStride, pairs)  a batch, dense, four
 *       vectors at a time: vector v's inputs at x + v·xStride, its sums at acc + v·accStride, and
 *       acc[v][c] = Σ_r x[v][r]·w[r][c]; per block of four vectors and column pair (8 columns) the
 *       eight accumulator vectors stay in registers for all rows. `pairs` = padded columns / 8.
 *
 * All arguments are i32 byte addresses or counts. In text form, mvm32:
 *
 *   end = vecs << 4;  for (cb = 0; cb < end; cb += 16) v128.store(acc + cb, 0)
 *   for (k = 0; k + 8 <= n; k += 8) {
 *     p_j = w + i32.load(idx + 4k + 4j)·stride;  x_j = v128.load32_splat(xv + 4k + 4j)   (j = 0..7)
 *     for (cb = 0; cb < end; cb += 16)
 *       v128.store(acc + cb, acc[cb] + x_0·v128.load(p_0 + cb) + … + x_7·v128.load(p_7 + cb))
 *   }
 *   for (; k < n; k++) { the same with one row }
 *
 * and gemm32:
 *
 *   for (; blocks > 0; blocks--, x += 4·xStride, acc += 4·accStride) {
 *     for (cb = 0; cb < pairs << 5; cb += 32) {
 *       a_j0 = a_j1 = 0 (j = 0..3);  wp = w + cb
 *       for (xp = x; xp < x + 4·rows; xp += 4, wp += stride) {
 *         w0 = v128.load(wp); w1 = v128.load(wp + 16)
 *         s = v128.load32_splat(xp + j·xStride);  a_j0 += s·w0;  a_j1 += s·w1      (j = 0..3)
 *       }
 *       v128.store(acc + j·accStride + cb, a_j0);  v128.store(… + 16, a_j1)       (j = 0..3)
 *     }
 *   }
 */

import {
  BLOCK, LOOP, END, BR, BR_IF, LOCAL_TEE, I32_LOAD, I32_GE_U, I32_LE_S, I32_GT_U, I32_ADD, I32_SUB, I32_MUL, I32_SHL, EMPTY, I32, F64, V128,
  IF, ELSE, SELECT, I32_STORE, F32_LOAD, F32_STORE, F64_STORE, I32_EQZ, I32_AND, I32_XOR, I32_SHR_S, I32_ROTL, I32_NE, RETURN,
  F64_CONVERT_I32_S, F64_LOAD, F64_SQRT, F64_EQ, F64_NE, F64_LT, F64_GT, F64_LE, F64_ABS, F64_FLOOR, F64_ADD, F64_SUB, F64_MUL, F64_DIV, F64_MIN, F64_MAX,
  F32, F32_ADD, F32_MUL, F32_DEMOTE_F64, F64_PROMOTE_F32, V128_LOAD, V128_LOAD32_SPLAT, V128_STORE, V128_CONST, F32X4_ADD, F32X4_MUL,
  I32_LT_S, F32_NE, F32_ABS, F32_MAX, F64X2_SQRT, F64X2_GT, F64X2_LT, V128_OR, V128_ANY_TRUE, V128_LOAD64_ZERO, V128_STORE64_LANE, F32X4_EXTRACT_LANE, F32X4_ABS, F32X4_MAX, F32X4_DEMOTE_F64X2_ZERO,
  F64X2_SPLAT, F64X2_PROMOTE_LOW_F32X4, F64X2_FLOOR, F64X2_ADD, F64X2_MUL, F64X2_DIV, F64X2_PMIN, F64X2_PMAX, F32X4_PMAX, F32X4_NE,
  CALL, I32_EQ, F64_NEG, F64_CONVERT_I32_U,
  simd, mem, get, set, i32c, f64c, codeBuffer, functionBody, moduleBytes, compile, instantiate, type WasmMemory,
} from '../../runtime/wasm/assembler.js';

// mvm32's parameters and locals.
const W = 0, STRIDE = 1, IDX = 2, XV = 3, N = 4, ACC = 5, VECS = 6;
/** Active rows per pass over the columns: each accumulator vector is loaded and stored once per pass. */
const ROWS_PER_PASS = 8;
const K = 7, CB = 8, END_ = 9, P0 = 10, A = P0 + ROWS_PER_PASS, X0 = A + 1; // p_j = P0 + j, x_j = X0 + j

function mvmKernel(): number[] {
  const { code, emit } = codeBuffer();
  // end = vecs << 4 (bytes per row); zero the accumulators
  emit(get(VECS), i32c(4), [I32_SHL], set(END_));
  emit(i32c(0), set(CB), [BLOCK, EMPTY, LOOP, EMPTY], get(CB), get(END_), [I32_GE_U, BR_IF, 1]);
  emit(get(ACC), get(CB), [I32_ADD], simd(V128_CONST), new Array<number>(16).fill(0), simd(V128_STORE), mem(0, 0));
  emit(get(CB), i32c(16), [I32_ADD], set(CB), [BR, 0, END, END]);
  const rowSetup = (j: number): void => {
    // p_j = w + idx[k + j]·stride; x_j = splat(xv[k + j])
    emit(get(W), get(IDX), get(K), i32c(2), [I32_SHL, I32_ADD, I32_LOAD], mem(2, 4 * j), get(STRIDE), [I32_MUL, I32_ADD], set(P0 + j));
    emit(get(XV), get(K), i32c(2), [I32_SHL, I32_ADD], simd(V128_LOAD32_SPLAT), mem(2, 4 * j), set(X0 + j));
  };
  const columns = (rows: number): void => {
    emit(i32c(0), set(CB), [BLOCK, EMPTY, LOOP, EMPTY], get(CB), get(END_), [I32_GE_U, BR_IF, 1]);
    emit(get(ACC), get(CB), [I32_ADD, LOCAL_TEE, A], get(A), simd(V128_LOAD), mem(0, 0));
    for (let j = 0; j < rows; j++) emit(get(X0 + j), get(P0 + j), get(CB), [I32_ADD], simd(V128_LOAD), mem(0, 0), simd(F32X4_MUL), simd(F32X4_ADD));
    emit(simd(V128_STORE), mem(0, 0));
    emit(get(CB), i32c(16), [I32_ADD], set(CB), [BR, 0, END, END]);
  };
  // ROWS_PER_PASS active rows at a time, then the remaining rows one by one (a stage of four in
  // between measured slower: 1.0–1.2× on 128–250 active rows, as V8 then allocates registers).
  emit(i32c(0), set(K));
  for (const rows of [ROWS_PER_PASS, 1]) {
    emit([BLOCK, EMPTY, LOOP, EMPTY], get(K), i32c(rows), [I32_ADD], get(N), [I32_GT_U, BR_IF, 1]);
    for (let j = 0; j < rows; j++) rowSetup(j);
    columns(rows);
    emit(get(K), i32c(rows), [I32_ADD], set(K), [BR, 0, END, END]);
  }
  return functionBody([[4 + ROWS_PER_PASS, I32], [ROWS_PER_PASS, V128]], code);
}

// column32(w, stride, idx, xv, n, col) → f32: one column of mvm32's sums, alone: Σ_k xv[k]·w[idx[k]][col]
// in the same row order and float32 arithmetic, so it equals mvm32's acc[col] bit for bit.
const CW = 0, CSTRIDE = 1, CIDX = 2, CXV = 3, CN = 4, CCOL = 5, CK = 6, CS = 7;

function columnKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(CK), get(CN), [I32_GE_U, BR_IF, 1]);
  emit(get(CS), get(CXV), get(CK), i32c(2), [I32_SHL, I32_ADD, F32_LOAD], mem(2, 0));
  emit(get(CW), get(CIDX), get(CK), i32c(2), [I32_SHL, I32_ADD, I32_LOAD], mem(2, 0), get(CSTRIDE), [I32_MUL, I32_ADD], get(CCOL), [I32_ADD, F32_LOAD], mem(2, 0));
  emit([F32_MUL, F32_ADD], set(CS), get(CK), i32c(1), [I32_ADD], set(CK), [BR, 0, END, END], get(CS));
  return functionBody([[1, I32], [1, F32]], code);
}

// overBound(acc, from, cols, f, bound) → the first column c ≥ from whose sum (f32 at acc) is not
// inside the bound when scaled: !(|acc[c]|·f ≤ bound) in float64, as tile.ts's bound-management
// check tests it first (NaN included); `cols` if there is none. It scans the columns the JS
// then examines one by one.
const OACC = 0, OFROM = 1, OCOLS = 2, OF = 3, OBOUND = 4;

function overBoundKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(OFROM), get(OCOLS), [I32_GE_U, BR_IF, 1]);
  emit(get(OACC), get(OFROM), i32c(2), [I32_SHL, I32_ADD, F32_LOAD], mem(2, 0), [F64_PROMOTE_F32, F64_ABS], get(OF), [F64_MUL], get(OBOUND), [F64_LE, I32_EQZ]);
  emit([IF, EMPTY], get(OFROM), [RETURN, END]);
  emit(get(OFROM), i32c(1), [I32_ADD], set(OFROM), [BR, 0, END, END], get(OFROM));
  return functionBody([], code);
}

// gemm32's parameters and locals.
const GX = 0, GXSTRIDE = 1, GBLOCKS = 2, GROWS = 3, GW = 4, GSTRIDE = 5, GACC = 6, GACCSTRIDE = 7, GPAIRS = 8;
const GCB = 9, GCEND = 10, GWP = 11, GXP = 12, GXEND = 13, GOUT = 14, GX1 = 15, GA = 16, GW0 = 24, GW1 = 25, GS = 26; // a_j0, a_j1 = 16 + 2j, 17 + 2j

function gemmKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit(get(GPAIRS), i32c(5), [I32_SHL], set(GCEND));
  // for (; blocks > 0; blocks--)
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(GBLOCKS), i32c(0), [I32_LE_S, BR_IF, 1]);
  emit(get(GX), get(GROWS), i32c(2), [I32_SHL, I32_ADD], set(GXEND));
  emit(i32c(0), set(GCB), [BLOCK, EMPTY, LOOP, EMPTY], get(GCB), get(GCEND), [I32_GE_U, BR_IF, 1]);
  for (let j = 0; j < 8; j++) emit(simd(V128_CONST), new Array<number>(16).fill(0), set(GA + j));
  emit(get(GW), get(GCB), [I32_ADD], set(GWP), get(GX), set(GXP));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(GXP), get(GXEND), [I32_GE_U, BR_IF, 1]);
  emit(get(GWP), simd(V128_LOAD), mem(0, 0), set(GW0), get(GWP), simd(V128_LOAD), mem(0, 16), set(GW1));
  for (let j = 0; j < 4; j++) {
    // vector j's input at xp + j·xStride (x1 walks there)
    if (j === 0) emit(get(GXP), simd(V128_LOAD32_SPLAT), mem(2, 0), set(GS));
    else emit(j === 1 ? get(GXP) : get(GX1), get(GXSTRIDE), [I32_ADD, LOCAL_TEE, GX1], simd(V128_LOAD32_SPLAT), mem(2, 0), set(GS));
    for (let h = 0; h < 2; h++) emit(get(GA + 2 * j + h), get(GS), get(h ? GW1 : GW0), simd(F32X4_MUL), simd(F32X4_ADD), set(GA + 2 * j + h));
  }
  emit(get(GWP), get(GSTRIDE), [I32_ADD], set(GWP), get(GXP), i32c(4), [I32_ADD], set(GXP), [BR, 0, END, END]);
  emit(get(GACC), get(GCB), [I32_ADD], set(GOUT));
  for (let j = 0; j < 4; j++) {
    if (j) emit(get(GOUT), get(GACCSTRIDE), [I32_ADD], set(GOUT));
    for (let h = 0; h < 2; h++) emit(get(GOUT), get(GA + 2 * j + h), simd(V128_STORE), mem(0, 16 * h));
  }
  emit(get(GCB), i32c(32), [I32_ADD], set(GCB), [BR, 0, END, END]);
  emit(get(GX), get(GXSTRIDE), i32c(2), [I32_SHL, I32_ADD], set(GX), get(GACC), get(GACCSTRIDE), i32c(2), [I32_SHL, I32_ADD], set(GACC));
  emit(get(GBLOCKS), i32c(1), [I32_SUB], set(GBLOCKS), [BR, 0, END, END]);
  return functionBody([[7, I32], [11, V128]], code);
}


/**
 * The DAC's arithmetic as tile.ts wrote it in JS, in float64: v = x·inv; with `levels` > 0,
 * v = floor(v·levels + 0.5)·(1/levels) clamped to [−1, 1]; codes and their squares stored as
 * float32. The product by 1/levels replaced a division (the f64x2 divide bounded the DAC's speed):
 * for every resolution a profile allows (2–24 bits) and every code, its float32 code and square
 * equal those of code/levels (checked for all of them in test/crossbar/kernels.test.ts).
 * `value(p)` pushes v for the input at address p.
 */
function emitDac(emit: (...parts: number[][]) => void, levels: number, v: number, value: number[][]): void {
  emit(...value, set(v));
  emit(get(levels), f64c(0), [F64_NE, IF, EMPTY]);
  emit(get(v), get(levels), [F64_MUL], f64c(0.5), [F64_ADD, F64_FLOOR], f64c(1), get(levels), [F64_DIV, F64_MUL], f64c(1), [F64_MIN], f64c(-1), [F64_MAX], set(v));
  emit([END]);
}

// nonZero(x, rows, idx, xs, xmax) → n: one vector's non-zero inputs as mvm32's list (rows at idx,
// values at xs, both i32/f32), and its |x|max into xmax (float64; NaN if it holds a NaN). The list
// serves every bound-management round: a row whose code rounds to 0 adds an exact zero.
const ZX = 0, ZROWS = 1, ZIDX = 2, ZXS = 3, ZXMAX = 4, ZR = 5, ZN = 6, ZV = 7, ZM = 8;

function nonZeroKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(ZR), get(ZROWS), [I32_GE_U, BR_IF, 1]);
  emit(get(ZX), get(ZR), i32c(2), [I32_SHL, I32_ADD, F32_LOAD], mem(2, 0), set(ZV));
  emit(get(ZM), get(ZV), [F32_ABS, F32_MAX], set(ZM));
  emit(get(ZV), f64c(0), [F32_DEMOTE_F64, F32_NE, IF, EMPTY]);
  emit(get(ZIDX), get(ZN), i32c(2), [I32_SHL, I32_ADD], get(ZR), [I32_STORE], mem(2, 0));
  emit(get(ZXS), get(ZN), i32c(2), [I32_SHL, I32_ADD], get(ZV), [F32_STORE], mem(2, 0));
  emit(get(ZN), i32c(1), [I32_ADD], set(ZN), [END]);
  emit(get(ZR), i32c(1), [I32_ADD], set(ZR), [BR, 0, END, END]);
  emit(get(ZXMAX), get(ZM), [F64_PROMOTE_F32, F64_STORE], mem(3, 0), get(ZN));
  return functionBody([[2, I32], [2, F32]], code);
}

/** Local indices of a dense-DAC loop: one vector's inputs x (f32), codes out and squares out2 (f32); vinv, vl, vstep and vv are v128. */
interface DenseDacLocals { x: number; rows: number; levels: number; out: number; out2: number; row: number; inv: number; v: number; vinv: number; vl: number; vv: number; vstep: number }

/**
 * One vector's codes and squares, densely: two inputs at a time in float64 (f64x2), so every code is
 * the scalar DAC's, and an odd last input through the scalar DAC. Inputs are multiplied by `inv`.
 */
function emitDenseDac(emit: (...parts: number[][]) => void, l: DenseDacLocals): void {
  const at = (base: number): number[][] => [get(base), get(l.row), i32c(2), [I32_SHL, I32_ADD]];
  const splat = (v: number): number[][] => [f64c(v), simd(F64X2_SPLAT)];
  emit(get(l.inv), simd(F64X2_SPLAT), set(l.vinv), get(l.levels), simd(F64X2_SPLAT), set(l.vl), i32c(0), set(l.row));
  emit(f64c(1), get(l.levels), [F64_DIV], simd(F64X2_SPLAT), set(l.vstep));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(l.row), i32c(2), [I32_ADD], get(l.rows), [I32_GT_U, BR_IF, 1]);
  emit(...at(l.x), simd(V128_LOAD64_ZERO), mem(2, 0), simd(F64X2_PROMOTE_LOW_F32X4), get(l.vinv), simd(F64X2_MUL), set(l.vv));
  emit(get(l.levels), f64c(0), [F64_NE, IF, EMPTY]);
  emit(get(l.vv), get(l.vl), simd(F64X2_MUL), ...splat(0.5), simd(F64X2_ADD), simd(F64X2_FLOOR), get(l.vstep), simd(F64X2_MUL));
  emit(...splat(1), simd(F64X2_PMIN), ...splat(-1), simd(F64X2_PMAX), set(l.vv), [END]);
  emit(...at(l.out), get(l.vv), simd(F32X4_DEMOTE_F64X2_ZERO), simd(V128_STORE64_LANE), mem(2, 0), [0]);
  emit(...at(l.out2), get(l.vv), get(l.vv), simd(F64X2_MUL), simd(F32X4_DEMOTE_F64X2_ZERO), simd(V128_STORE64_LANE), mem(2, 0), [0]);
  emit(get(l.row), i32c(2), [I32_ADD], set(l.row), [BR, 0, END, END]);
  emit(get(l.row), get(l.rows), [I32_LT_S, IF, EMPTY]);
  emitDac(emit, l.levels, l.v, [...at(l.x), [F32_LOAD], mem(2, 0), [F64_PROMOTE_F32], get(l.inv), [F64_MUL]]);
  emit(...at(l.out), get(l.v), [F32_DEMOTE_F64, F32_STORE], mem(2, 0));
  emit(...at(l.out2), get(l.v), get(l.v), [F64_MUL, F32_DEMOTE_F64, F32_STORE], mem(2, 0));
  emit([END]);
}

// dacScaled(x, rows, inv, levels, out, out2): one vector's codes of x·inv and their squares, densely
// (bound management's later rounds, several vectors then going through gemm32 together).
const SX = 0, SROWS = 1, SINV = 2, SLEVELS = 3, SOUT = 4, SOUT2 = 5, SROW = 6, SV = 7, SVINV = 8, SVL = 9, SVV = 10;

function dacScaledKernel(): number[] {
  const { code, emit } = codeBuffer();
  emitDenseDac(emit, { x: SX, rows: SROWS, levels: SLEVELS, out: SOUT, out2: SOUT2, row: SROW, inv: SINV, v: SV, vinv: SVINV, vl: SVL, vv: SVV, vstep: SVV + 1 });
  return functionBody([[1, I32], [1, F64], [4, V128]], code);
}

// dacPicked(x, rows, n, picks, invs, levels, out, out2): dacScaled for n vectors of a batch at once —
// vector picks[j] (i32) of x (rows floats each) times invs[j] (f64) into slot j of out and out2 —
// one call for a bound-management round instead of one per vector.
const PX = 0, PROWS = 1, PN = 2, PPICKS = 3, PINVS = 4, PLEVELS = 5, POUT = 6, POUT2 = 7;
const PJ = 8, PSRC = 9, PDST = 10, PDST2 = 11, PROW = 12, PINV = 13, PV = 14, PVINV = 15, PVL = 16, PVV = 17;

function dacPickedKernel(): number[] {
  const { code, emit } = codeBuffer();
  const rowBytes: number[][] = [get(PROWS), i32c(2), [I32_SHL]];
  emit(get(POUT), set(PDST), get(POUT2), set(PDST2), i32c(0), set(PJ));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(PJ), get(PN), [I32_GE_U, BR_IF, 1]);
  emit(get(PX), get(PPICKS), get(PJ), i32c(2), [I32_SHL, I32_ADD, I32_LOAD], mem(2, 0), ...rowBytes, [I32_MUL, I32_ADD], set(PSRC));
  emit(get(PINVS), get(PJ), i32c(3), [I32_SHL, I32_ADD, F64_LOAD], mem(3, 0), set(PINV));
  emitDenseDac(emit, { x: PSRC, rows: PROWS, levels: PLEVELS, out: PDST, out2: PDST2, row: PROW, inv: PINV, v: PV, vinv: PVINV, vl: PVL, vv: PVV, vstep: PVV + 1 });
  emit(get(PDST), ...rowBytes, [I32_ADD], set(PDST), get(PDST2), ...rowBytes, [I32_ADD], set(PDST2));
  emit(get(PJ), i32c(1), [I32_ADD], set(PJ), [BR, 0, END, END]);
  return functionBody([[5, I32], [2, F64], [4, V128]], code);
}

// dacBatch(x, rows, batch, levels, out, out2, xmax): every vector's |x|max (float64, NaN if it
// holds a NaN) into xmax[b], and its codes and squares densely for gemm32 (zeros for an all-zero or
// non-finite vector). |x|max four inputs at a time (f32x4: max of float32 magnitudes, NaN
// propagating, is the float64 scan's result), then the dense DAC with inv = 1/|x|max.
const BX = 0, BROWS = 1, BBATCH = 2, BLEVELS = 3, BOUT = 4, BOUT2 = 5, BXMAX = 6;
const BB = 7, BROW = 8, BSPECIAL = 9, BM = 10, BINV = 11, BV = 12, BMF = 13, BACC = 14, BVINV = 15, BVL = 16, BVV = 17, BNAN = 18;

function dacBatchKernel(): number[] {
  const { code, emit } = codeBuffer();
  const at = (base: number): number[][] => [get(base), get(BROW), i32c(2), [I32_SHL, I32_ADD]];
  const rowLoop = (step: number, body: () => void): void => {
    emit([BLOCK, EMPTY, LOOP, EMPTY], get(BROW), i32c(step), [I32_ADD], get(BROWS), [I32_GT_U, BR_IF, 1]);
    body();
    emit(get(BROW), i32c(step), [I32_ADD], set(BROW), [BR, 0, END, END]);
  };
  emit(i32c(0), set(BB), [BLOCK, EMPTY, LOOP, EMPTY], get(BB), get(BBATCH), [I32_GE_U, BR_IF, 1]);
  // |x|max
  // pmax (one instruction) drops NaNs, so they are noted in a mask of their own.
  const zero = (local: number): void => emit(simd(V128_CONST), new Array<number>(16).fill(0), set(local));
  zero(BACC);
  zero(BNAN);
  emit(i32c(0), set(BROW));
  rowLoop(4, () => {
    emit(...at(BX), simd(V128_LOAD), mem(2, 0), set(BVV));
    emit(get(BACC), get(BVV), simd(F32X4_ABS), simd(F32X4_PMAX), set(BACC));
    emit(get(BNAN), get(BVV), get(BVV), simd(F32X4_NE), simd(V128_OR), set(BNAN));
  });
  emit(get(BACC), simd(F32X4_EXTRACT_LANE), [0], get(BACC), simd(F32X4_EXTRACT_LANE), [1], [F32_MAX]);
  emit(get(BACC), simd(F32X4_EXTRACT_LANE), [2], get(BACC), simd(F32X4_EXTRACT_LANE), [3], [F32_MAX, F32_MAX], set(BMF));
  emit(get(BNAN), simd(V128_ANY_TRUE), [IF, EMPTY], f64c(NaN), [F32_DEMOTE_F64], set(BMF), [END]);
  rowLoop(1, () => emit(get(BMF), ...at(BX), [F32_LOAD], mem(2, 0), [F32_ABS, F32_MAX], set(BMF)));
  emit(get(BMF), [F64_PROMOTE_F32], set(BM), get(BXMAX), get(BB), i32c(3), [I32_SHL, I32_ADD], get(BM), [F64_STORE], mem(3, 0));
  // special = !(m != 0 && m < ∞): zeros; else the DAC
  emit(get(BM), f64c(0), [F64_NE], get(BM), f64c(Infinity), [F64_LT, I32_AND, I32_EQZ], set(BSPECIAL), i32c(0), set(BROW));
  emit(get(BSPECIAL), [IF, EMPTY]);
  rowLoop(1, () => emit(...at(BOUT), f64c(0), [F32_DEMOTE_F64, F32_STORE], mem(2, 0), ...at(BOUT2), f64c(0), [F32_DEMOTE_F64, F32_STORE], mem(2, 0)));
  emit([ELSE], f64c(1), get(BM), [F64_DIV], set(BINV));
  emitDenseDac(emit, { x: BX, rows: BROWS, levels: BLEVELS, out: BOUT, out2: BOUT2, row: BROW, inv: BINV, v: BV, vinv: BVINV, vl: BVL, vv: BVV, vstep: BNAN + 1 });
  emit([END]);
  // next vector
  const step: number[][] = [get(BROWS), i32c(2), [I32_SHL]];
  for (const base of [BX, BOUT, BOUT2]) emit(get(base), ...step, [I32_ADD], set(base));
  emit(get(BB), i32c(1), [I32_ADD], set(BB), [BR, 0, END, END]);
  return functionBody([[3, I32], [3, F64], [1, F32], [6, V128]], code);
}


// adc(acc, stride, var, normals, batch, cols, backs, scale, gdc, out, flags, outVar, step, bound):
// per vector b (acc and var rows `stride` bytes apart, var 0: no device read noise), the ADC as
// periphery.ts's adcConvert computes it, in float64: v = acc + √(var + σ_out²)·normal, clamped to ±bound
// (flags[b] = 1 if any output was), quantised to `step` (0: not), then back to model units:
// out = v·backs[b]·scale[c]·gdc[c] as float32. A vector whose back factor is 0 or not finite
// (all-zero or non-finite input) gets zeros or NaNs. Two columns at a time in f64x2 (the clamp as
// min/max, which treat NaN and the bounds as the scalar branches do), an odd last column alone.
const AACC = 0, ASTRIDE = 1, AVAR = 2, ANORM = 3, ABATCH = 4, ACOLS = 5, ABACKS = 6, ASCALE = 7, AGDC = 8, AOUT = 9, AFLAGS = 10;
const AOUTVAR = 11, ASTEP = 12, ABOUND = 13, AB = 14, AC = 15, ASAT = 16, AHASVAR = 17, ABACK = 18, AV = 19, AFILL = 20, AINV = 21;
// f64x2 splats of the constants, the pair in flight and the saturation mask
const AVBOUND = 22, AVNEG = 23, AVSTEP = 24, AVINV = 25, AVSIGMA = 26, AVOUTVAR = 27, AVBACK = 28, AVV = 29, AVSAT = 30;

function adcKernel(): number[] {
  const { code, emit } = codeBuffer();
  const at = (base: number, shift: number): number[][] => [get(base), get(AC), i32c(shift), [I32_SHL, I32_ADD]];
  const pair = (base: number): number[][] => [...at(base, 2), simd(V128_LOAD64_ZERO), mem(2, 0), simd(F64X2_PROMOTE_LOW_F32X4)];
  const columns = (step: number, body: () => void): void => {
    emit([BLOCK, EMPTY, LOOP, EMPTY], get(AC), i32c(step), [I32_ADD], get(ACOLS), [I32_GT_U, BR_IF, 1]);
    body();
    emit(get(AC), i32c(step), [I32_ADD], set(AC), [BR, 0, END, END]);
  };
  emit(get(AVAR), i32c(0), [I32_NE], set(AHASVAR));
  // inv = step != 0 ? 1 / step : 0
  emit(f64c(1), get(ASTEP), [F64_DIV], f64c(0), get(ASTEP), f64c(0), [F64_NE, SELECT], set(AINV));
  emit(get(ABOUND), simd(F64X2_SPLAT), set(AVBOUND), f64c(0), get(ABOUND), [F64_SUB], simd(F64X2_SPLAT), set(AVNEG));
  emit(get(ASTEP), simd(F64X2_SPLAT), set(AVSTEP), get(AINV), simd(F64X2_SPLAT), set(AVINV));
  emit(get(AOUTVAR), simd(F64X2_SPLAT), set(AVOUTVAR), get(AOUTVAR), [F64_SQRT], simd(F64X2_SPLAT), set(AVSIGMA));
  emit(i32c(0), set(AB), [BLOCK, EMPTY, LOOP, EMPTY], get(AB), get(ABATCH), [I32_GE_U, BR_IF, 1]);
  emit(get(ABACKS), get(AB), i32c(3), [I32_SHL, I32_ADD, F64_LOAD], mem(3, 0), set(ABACK), i32c(0), set(ASAT), i32c(0), set(AC));
  // if (back != 0 && back < ∞) { convert } else { fill with 0 (back 0) or NaN }
  emit(get(ABACK), f64c(0), [F64_NE], get(ABACK), f64c(Infinity), [F64_LT, I32_AND, IF, EMPTY]);
  emit(get(ABACK), simd(F64X2_SPLAT), set(AVBACK), simd(V128_CONST), new Array<number>(16).fill(0), set(AVSAT));
  columns(2, () => {
    emit(...pair(AACC));
    emit(get(AHASVAR), [IF, V128], ...pair(AVAR), get(AVOUTVAR), simd(F64X2_ADD), simd(F64X2_SQRT), [ELSE], get(AVSIGMA), [END]);
    emit(...at(ANORM, 3), simd(V128_LOAD), mem(3, 0), simd(F64X2_MUL), simd(F64X2_ADD), set(AVV));
    emit(get(AVSAT), get(AVV), get(AVBOUND), simd(F64X2_GT), get(AVV), get(AVNEG), simd(F64X2_LT), simd(V128_OR), simd(V128_OR), set(AVSAT));
    emit(get(AVV), get(AVBOUND), simd(F64X2_PMIN), get(AVNEG), simd(F64X2_PMAX), set(AVV));
    emit(get(ASTEP), f64c(0), [F64_NE, IF, EMPTY], get(AVV), get(AVINV), simd(F64X2_MUL), f64c(0.5), simd(F64X2_SPLAT), simd(F64X2_ADD), simd(F64X2_FLOOR));
    emit(get(AVSTEP), simd(F64X2_MUL), set(AVV), [END]);
    emit(...at(AOUT, 2), get(AVV), get(AVBACK), simd(F64X2_MUL), ...pair(ASCALE), simd(F64X2_MUL), ...pair(AGDC), simd(F64X2_MUL));
    emit(simd(F32X4_DEMOTE_F64X2_ZERO), simd(V128_STORE64_LANE), mem(2, 0), [0]);
  });
  emit(get(AVSAT), simd(V128_ANY_TRUE), set(ASAT));
  columns(1, () => {
    // v = acc + √((hasVar ? var : 0) + σ²)·normal
    emit(...at(AACC, 2), [F32_LOAD], mem(2, 0), [F64_PROMOTE_F32]);
    emit(get(AHASVAR), [IF, F64], ...at(AVAR, 2), [F32_LOAD], mem(2, 0), [F64_PROMOTE_F32], get(AOUTVAR), [F64_ADD, ELSE], get(AOUTVAR), [END, F64_SQRT]);
    emit(...at(ANORM, 3), [F64_LOAD], mem(3, 0), [F64_MUL, F64_ADD], set(AV));
    emit(get(AV), get(ABOUND), [F64_GT, IF, EMPTY], get(ABOUND), set(AV), i32c(1), set(ASAT), [ELSE]);
    emit(get(AV), f64c(0), get(ABOUND), [F64_SUB, F64_LT, IF, EMPTY], f64c(0), get(ABOUND), [F64_SUB], set(AV), i32c(1), set(ASAT), [END, END]);
    emit(get(ASTEP), f64c(0), [F64_NE, IF, EMPTY], get(AV), get(AINV), [F64_MUL], f64c(0.5), [F64_ADD, F64_FLOOR], get(ASTEP), [F64_MUL], set(AV), [END]);
    emit(...at(AOUT, 2), get(AV), get(ABACK), [F64_MUL], ...at(ASCALE, 2), [F32_LOAD], mem(2, 0), [F64_PROMOTE_F32, F64_MUL]);
    emit(...at(AGDC, 2), [F32_LOAD], mem(2, 0), [F64_PROMOTE_F32, F64_MUL, F32_DEMOTE_F64, F32_STORE], mem(2, 0));
  });
  emit([ELSE], f64c(0), f64c(NaN), get(ABACK), f64c(0), [F64_EQ, SELECT], set(AFILL));
  columns(1, () => emit(...at(AOUT, 2), get(AFILL), [F32_DEMOTE_F64, F32_STORE], mem(2, 0)));
  emit([END]);
  emit(get(AFLAGS), get(AB), i32c(2), [I32_SHL, I32_ADD], get(ASAT), [I32_STORE], mem(2, 0));
  // next vector
  emit(get(AACC), get(ASTRIDE), [I32_ADD], set(AACC));
  emit(get(AHASVAR), [IF, EMPTY], get(AVAR), get(ASTRIDE), [I32_ADD], set(AVAR), [END]);
  emit(get(ANORM), get(ACOLS), i32c(3), [I32_SHL, I32_ADD], set(ANORM), get(AOUT), get(ACOLS), i32c(2), [I32_SHL, I32_ADD], set(AOUT));
  emit(get(AB), i32c(1), [I32_ADD], set(AB), [BR, 0, END, END]);
  return functionBody([[4, I32], [4, F64], [9, V128]], code);
}


// normals(state, tables, out, n): random.ts's fillNormals — xoshiro128** (state of four i32 at
// `state`, stored back at the end) and the ziggurat (KN, WN, FN, 128 f64 each, at `tables`) — into
// out[0..n), standard normals in the same sequence bit for bit. The fast path (about 99 draws in
// 100) is one draw, a compare and a multiply; the slow path (wedges and the tail, #normalSlow's
// steps in order) calls the imported exp and log, which are JS's Math.exp and Math.log.
const NSTATE = 0, NTABLES = 1, NOUT = 2, NN = 3, NA = 4, NB = 5, NC = 6, ND = 7, NK = 8, NU = 9, NT = 10, NI = 11;
const NH = 12, NX = 13, NTAIL = 14, NY = 15, NRES = 16;
/** Function indices of the module's imports (see kernelModuleBytes). */
const EXP = 0, LOG = 1;
/** The ziggurat's R (random.ts) and 2^−32. */
const ZIGGURAT_R = 3.442619855899;
const TWO_TO_MINUS_32 = 2.3283064365386963e-10;

function normalsKernel(): number[] {
  const { code, emit } = codeBuffer();
  // u = rotl(b·5, 7)·9; t = b << 9; c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11)
  const next = (): void => {
    emit(get(NB), i32c(5), [I32_MUL], i32c(7), [I32_ROTL], i32c(9), [I32_MUL], set(NU), get(NB), i32c(9), [I32_SHL], set(NT));
    emit(get(NC), get(NA), [I32_XOR], set(NC), get(ND), get(NB), [I32_XOR], set(ND), get(NB), get(NC), [I32_XOR], set(NB));
    emit(get(NA), get(ND), [I32_XOR], set(NA), get(NC), get(NT), [I32_XOR], set(NC), get(ND), i32c(11), [I32_ROTL], set(ND));
  };
  // i = u & 127 (as the byte address of KN[i]); h = u >> 7 (signed)
  const layer = (): void => emit(get(NU), i32c(127), [I32_AND], i32c(3), [I32_SHL], get(NTABLES), [I32_ADD], set(NI), get(NU), i32c(7), [I32_SHR_S, F64_CONVERT_I32_S], set(NH));
  // |h| < KN[i]: the draw is h·WN[i]
  const fast = (): void => emit(get(NH), [F64_ABS], get(NI), [F64_LOAD], mem(3, 0), [F64_LT]);
  const hw = (): void => emit(get(NH), get(NI), [F64_LOAD], mem(3, 1024), [F64_MUL]);
  // uniform in [0, 1) and in (0, 1), from the next draw
  const uniform = (half: boolean): void => {
    next();
    emit(get(NU), [F64_CONVERT_I32_U]);
    if (half) emit(f64c(0.5), [F64_ADD]);
    emit(f64c(TWO_TO_MINUS_32), [F64_MUL]);
  };
  [NA, NB, NC, ND].forEach((l, j) => emit(get(NSTATE), [I32_LOAD], mem(2, 4 * j), set(l)));
  emit(i32c(0), set(NK), [BLOCK, EMPTY, LOOP, EMPTY], get(NK), get(NN), [I32_GE_U, BR_IF, 1]);
  next();
  layer();
  fast();
  emit([IF, EMPTY]);
  hw();
  emit(set(NRES), [ELSE]);
  // The slow path: block $done { loop $again { … } }, a result leaves by br to $done.
  emit([BLOCK, EMPTY, LOOP, EMPTY]);
  hw();
  emit(set(NX), get(NI), get(NTABLES), [I32_EQ, IF, EMPTY]);
  // Layer 0: the tail beyond R by Marsaglia's exponential method.
  emit([LOOP, EMPTY]);
  uniform(true);
  emit([CALL, LOG, F64_NEG], f64c(ZIGGURAT_R), [F64_DIV], set(NTAIL));
  uniform(true);
  emit([CALL, LOG, F64_NEG], set(NY), get(NY), get(NY), [F64_ADD], get(NTAIL), get(NTAIL), [F64_MUL, F64_LT, BR_IF, 0, END]);
  emit(f64c(ZIGGURAT_R), get(NTAIL), [F64_ADD], f64c(-ZIGGURAT_R), get(NTAIL), [F64_SUB], get(NH), f64c(0), [F64_GT, SELECT], set(NRES), [BR, 2, END]);
  // A wedge: FN[i] + U·(FN[i−1] − FN[i]) < exp(−x²/2) accepts x.
  emit(get(NI), [F64_LOAD], mem(3, 2048));
  uniform(false);
  emit(get(NI), [F64_LOAD], mem(3, 2040), get(NI), [F64_LOAD], mem(3, 2048), [F64_SUB, F64_MUL, F64_ADD]);
  emit(f64c(-0.5), get(NX), [F64_MUL], get(NX), [F64_MUL, CALL, EXP, F64_LT, IF, EMPTY], get(NX), set(NRES), [BR, 2, END]);
  // Else a fresh draw, through the fast path if it can.
  next();
  layer();
  fast();
  emit([IF, EMPTY]);
  hw();
  emit(set(NRES), [BR, 2, END]);
  emit([BR, 0, END, END]);
  emit([END]);
  emit(get(NOUT), get(NK), i32c(3), [I32_SHL, I32_ADD], get(NRES), [F64_STORE], mem(3, 0));
  emit(get(NK), i32c(1), [I32_ADD], set(NK), [BR, 0, END, END]);
  [NA, NB, NC, ND].forEach((l, j) => emit(get(NSTATE), get(l), [I32_STORE], mem(2, 4 * j)));
  return functionBody([[8, I32], [5, F64]], code);
}

/** The module's bytes: memory imported as e.m, exp and log as e.exp and e.log; kernels exported as mvm32, gemm32, nonZero, dacBatch, adc, normals, column32, dacScaled, dacPicked, overBound. */
export function kernelModuleBytes(): Uint8Array {
  const none: number[] = [];
  return moduleBytes([
    { name: 'mvm32', params: new Array(7).fill(I32), results: none, body: mvmKernel() },
    { name: 'gemm32', params: new Array(9).fill(I32), results: none, body: gemmKernel() },
    { name: 'nonZero', params: new Array(5).fill(I32), results: [I32], body: nonZeroKernel() },
    { name: 'dacBatch', params: [I32, I32, I32, F64, I32, I32, I32], results: none, body: dacBatchKernel() },
    { name: 'adc', params: [...new Array(11).fill(I32), F64, F64, F64], results: none, body: adcKernel() },
    { name: 'normals', params: [I32, I32, I32, I32], results: none, body: normalsKernel() },
    { name: 'column32', params: new Array(6).fill(I32), results: [F32], body: columnKernel() },
    { name: 'dacScaled', params: [I32, I32, F64, F64, I32, I32], results: none, body: dacScaledKernel() },
    { name: 'dacPicked', params: [I32, I32, I32, I32, I32, F64, I32, I32], results: none, body: dacPickedKernel() },
    { name: 'overBound', params: [I32, I32, I32, F64, F64], results: [I32], body: overBoundKernel() },
  ], [{ name: 'exp', params: [F64], results: [F64] }, { name: 'log', params: [F64], results: [F64] }]);
}

export type KernelFn = (w: number, stride: number, idx: number, xv: number, n: number, acc: number, vecs: number) => void;
export type GemmFn = (x: number, xStride: number, blocks: number, rows: number, w: number, stride: number, acc: number, accStride: number, pairs: number) => void;
/** One vector's non-zero inputs listed (idx, xs) and its |x|max (float64 at xmax); returns how many. */
export type NonZeroFn = (x: number, rows: number, idx: number, xs: number, xmax: number) => number;
/** A batch's |x|max per vector (float64 at xmax) and DAC codes and squares, densely. */
export type DacBatchFn = (x: number, rows: number, batch: number, levels: number, out: number, out2: number, xmax: number) => void;
/** The ADC and the way back to model units for `batch` vectors; flags[b] = 1 where one saturated. */
export type AdcFn = (acc: number, stride: number, variance: number, normals: number, batch: number, cols: number, backs: number, scale: number, gdc: number, out: number, flags: number, outVar: number, step: number, bound: number) => void;
/** `n` standard normals (Random.fillNormals' sequence) from the generator state at `state`, which it advances. */
export type NormalsFn = (state: number, tables: number, out: number, n: number) => void;
/** One vector's DAC codes of x·inv and their squares, densely. */
export type DacScaledFn = (x: number, rows: number, inv: number, levels: number, out: number, out2: number) => void;
/** dacScaled for n vectors of a batch (`picks`, i32) at their own factors (`invs`, f64), into consecutive slots. */
export type DacPickedFn = (x: number, rows: number, n: number, picks: number, invs: number, levels: number, out: number, out2: number) => void;
/** One column of mvm32's sums (`col` in bytes), bit-identical to it. */
export type ColumnFn = (w: number, stride: number, idx: number, xv: number, n: number, col: number) => number;
/** The first column from `from` on whose sum at `acc` (f32) is not within the bound when scaled, !(|sum|·f ≤ bound); `cols` if none. */
export type OverBoundFn = (acc: number, from: number, cols: number, f: number, bound: number) => number;
export interface Kernels { mvm32: KernelFn; gemm32: GemmFn; column32: ColumnFn; nonZero: NonZeroFn; dacBatch: DacBatchFn; dacScaled: DacScaledFn; dacPicked: DacPickedFn; adc: AdcFn; normals: NormalsFn; overBound: OverBoundFn; simd: boolean }

let compiled: object | null | undefined;

/** The SIMD kernels bound to `memory`, or null when this engine has no WebAssembly SIMD. */
export function instantiateSimdKernels(memory: WasmMemory): Kernels | null {
  if (compiled === undefined) compiled = compile(kernelModuleBytes());
  if (!compiled) return null;
  const exports = instantiate(compiled, memory, { exp: Math.exp, log: Math.log }) as unknown as Omit<Kernels, 'simd'>;
  return { mvm32: exports.mvm32, gemm32: exports.gemm32, column32: exports.column32, nonZero: exports.nonZero, dacBatch: exports.dacBatch, dacScaled: exports.dacScaled, dacPicked: exports.dacPicked, adc: exports.adc, normals: exports.normals, overBound: exports.overBound, simd: true };
}
