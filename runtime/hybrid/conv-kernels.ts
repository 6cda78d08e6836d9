/**
 * Conv's data movement around the crossbar as WebAssembly kernels in a memory of their own:
 * im2col's gather, the way back from patch-major outputs to ONNX's channel-major layout with the
 * bias added and the periphery's clamp (Relu, Clip) applied on the way, and the periphery's pooling.
 * These loops move every activation of a conv layer; in plain JS the gather cost 5.6 ns per element
 * on the CI machine, the kernel 1.9 ns (bench/analog's CNN went from 2.8× to 1.6× of digital). They
 * copy, add and divide in float32 and compare as JS does, so results are bit-identical to JS loops.
 * toChannels goes four channels at a time in SIMD (2026-12-07: 0.44–0.49× the scalar kernel's time
 * on the CNN's two conv layers, alternating in one process).
 *
 *   gather(src, offsets, n, dst)                      dst[i] = f32 at src + offsets[i]   (offsets in bytes)
 *   toChannels(src, positions, m, bias, dst, lo, hi)  dst[c·positions + p] = clamp(src[p·m + c] + bias[c], lo, hi)
 *        (v < lo → lo, v > hi → hi, else v: NaN and −0 pass, as `Relu` and `Clip` leave them)
 *   maxPool(src, planes, planeBytes, positions, starts, offsets, dst)
 *        per plane and output position p: the max of the f32 at src + plane·planeBytes + offsets[t]
 *        for t in starts[p] … starts[p+1]
 *   maxPool2x2(src, planes, planeBytes, rowBytes, outH, outW, dst)
 *        maxPool for 2×2 windows at stride 2 without padding (the common CNN pool): output (y, x) of
 *        each plane is the max of the f32 at rows 2y, 2y+1 and columns 2x, 2x+1, taken in maxPool's
 *        order; four outputs at a time (two loads per input row, split into even and odd columns by
 *        a shuffle, then f32x4.pmax, which is `v > m ? v : m` lane by lane), the rest one by one
 *   averagePool(src, planes, planeBytes, positions, starts, groups, offsets, terms, divisors, dst)
 *        per plane and output position p: (Σ over its groups g in starts[p] … starts[p+1] of the
 *        float32 sum of the f32 at src + plane·planeBytes + offsets[t] for t in groups[g] … groups[g+1])
 *        + terms[p], ÷ divisors[p] — each sum in order and from −0 (so it starts with its first
 *        element exactly), which reproduces onnxruntime's (MLAS') order of additions bit for bit
 */
import {
  BLOCK, LOOP, END, BR, BR_IF, I32_LOAD, I32_GE_U, I32_ADD, I32_MUL, I32_SHL, EMPTY, I32, F32, F32_LOAD, F32_STORE, F32_ADD,
  F32_DIV, F32_LT, F32_GT, F32_DEMOTE_F64, SELECT, I32_AND, V128, V128_LOAD, V128_STORE, F32X4_ADD, F32X4_PMAX, F32X4_PMIN, F32X4_SPLAT, V128_STORE32_LANE, I8X16_SHUFFLE, simd, mem, get, set, i32c, f64c, codeBuffer, functionBody, moduleBytes, compile, instantiate, wasmApi,
  type WasmMemory,
} from '../wasm/assembler.js';

const PAGE = 65536;

// gather's parameters and locals
const GSRC = 0, GOFF = 1, GN = 2, GDST = 3, GEND = 4;

function gatherKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit(get(GOFF), get(GN), i32c(2), [I32_SHL, I32_ADD], set(GEND));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(GOFF), get(GEND), [I32_GE_U, BR_IF, 1]);
  emit(get(GDST), get(GSRC), get(GOFF), [I32_LOAD], mem(2, 0), [I32_ADD, F32_LOAD], mem(2, 0), [F32_STORE], mem(2, 0));
  emit(get(GDST), i32c(4), [I32_ADD], set(GDST), get(GOFF), i32c(4), [I32_ADD], set(GOFF), [BR, 0, END, END]);
  return functionBody([[1, I32]], code);
}

// toChannels' parameters and locals. Position by position, four channels at a time (f32x4: the
// add, then the clamp as pmax/pmin, which are `v < lo ? lo : v` and `v > hi ? hi : v` exactly),
// each lane stored to its channel's row; the channels beyond a multiple of four one by one.
const TSRC = 0, TPOS = 1, TM = 2, TBIAS = 3, TDST = 4, TLO = 5, THI = 6, TC = 7, TS = 8, TP = 9, TCOL = 10, TD = 11, TM4 = 12, TV = 13;
const TVLO = 14, TVHI = 15, TVV = 16;

function toChannelsKernel(): number[] {
  const { code, emit } = codeBuffer();
  const biasAt = (): number[][] => [get(TBIAS), get(TC), i32c(2), [I32_SHL, I32_ADD]];
  const nextRow = (): void => emit(get(TD), get(TCOL), [I32_ADD], set(TD));
  emit(get(TPOS), i32c(2), [I32_SHL], set(TCOL), get(TM), i32c(-4), [I32_AND], set(TM4), get(TSRC), set(TS), i32c(0), set(TP));
  emit(get(TLO), simd(F32X4_SPLAT), set(TVLO), get(THI), simd(F32X4_SPLAT), set(TVHI));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(TP), get(TPOS), [I32_GE_U, BR_IF, 1]);
  emit(get(TDST), get(TP), i32c(2), [I32_SHL, I32_ADD], set(TD), i32c(0), set(TC));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(TC), get(TM4), [I32_GE_U, BR_IF, 1]);
  emit(get(TS), simd(V128_LOAD), mem(0, 0), ...biasAt(), simd(V128_LOAD), mem(0, 0), simd(F32X4_ADD));
  emit(get(TVLO), simd(F32X4_PMAX), get(TVHI), simd(F32X4_PMIN), set(TVV));
  for (let lane = 0; lane < 4; lane++) {
    emit(get(TD), get(TVV), simd(V128_STORE32_LANE), mem(2, 0), [lane]);
    nextRow();
  }
  emit(get(TS), i32c(16), [I32_ADD], set(TS), get(TC), i32c(4), [I32_ADD], set(TC), [BR, 0, END, END]);
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(TC), get(TM), [I32_GE_U, BR_IF, 1]);
  emit(get(TS), [F32_LOAD], mem(2, 0), ...biasAt(), [F32_LOAD], mem(2, 0), [F32_ADD], set(TV));
  emit(get(TLO), get(TV), get(TV), get(TLO), [F32_LT, SELECT], set(TV));
  emit(get(TD), get(THI), get(TV), get(TV), get(THI), [F32_GT, SELECT, F32_STORE], mem(2, 0));
  nextRow();
  emit(get(TS), i32c(4), [I32_ADD], set(TS), get(TC), i32c(1), [I32_ADD], set(TC), [BR, 0, END, END]);
  emit(get(TP), i32c(1), [I32_ADD], set(TP), [BR, 0, END, END]);
  return functionBody([[6, I32], [1, F32], [3, V128]], code);
}

// maxPool's parameters and locals
const PSRC = 0, PPLANES = 1, PPLANE = 2, PPOS = 3, PSTARTS = 4, POFF = 5, PDST = 6;
const PL = 7, P = 8, T = 9, TEND = 10, BASE = 11, SP = 12, M = 13, V = 14;

function maxPoolKernel(): number[] {
  const { code, emit } = codeBuffer();
  const load = (): number[] => [...get(BASE), ...get(T), I32_LOAD, ...mem(2, 0), I32_ADD, F32_LOAD, ...mem(2, 0)];
  emit(i32c(0), set(PL));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(PL), get(PPLANES), [I32_GE_U, BR_IF, 1]);
  emit(get(PSRC), get(PL), get(PPLANE), [I32_MUL, I32_ADD], set(BASE), get(PSTARTS), set(SP), i32c(0), set(P));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(P), get(PPOS), [I32_GE_U, BR_IF, 1]);
  emit(get(POFF), get(SP), [I32_LOAD], mem(2, 0), i32c(2), [I32_SHL, I32_ADD], set(T));
  emit(get(POFF), get(SP), [I32_LOAD], mem(2, 4), i32c(2), [I32_SHL, I32_ADD], set(TEND));
  emit(load(), set(M), get(T), i32c(4), [I32_ADD], set(T));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(T), get(TEND), [I32_GE_U, BR_IF, 1]);
  emit(load(), set(V), get(V), get(M), get(V), get(M), [F32_GT, SELECT], set(M));
  emit(get(T), i32c(4), [I32_ADD], set(T), [BR, 0, END, END]);
  emit(get(PDST), get(M), [F32_STORE], mem(2, 0));
  emit(get(PDST), i32c(4), [I32_ADD], set(PDST), get(SP), i32c(4), [I32_ADD], set(SP));
  emit(get(P), i32c(1), [I32_ADD], set(P), [BR, 0, END, END]);
  emit(get(PL), i32c(1), [I32_ADD], set(PL), [BR, 0, END, END]);
  return functionBody([[6, I32], [2, F32]], code);
}

// maxPool2x2's parameters and locals
const HSRC = 0, HPLANES = 1, HPLANE = 2, HROW = 3, HOUTH = 4, HOUTW = 5, HDST = 6;
const HL = 7, HY = 8, HX = 9, HX4 = 10, HR0 = 11, HR1 = 12, HM = 13, HV = 14, HA = 15, HB = 16;
/** The even (0, 2, 4, 6) and odd (1, 3, 5, 7) float lanes of two vectors, as i8x16.shuffle's byte indices. */
const EVEN_LANES = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD_LANES = EVEN_LANES.map((b) => b + 4);

function maxPool2x2Kernel(): number[] {
  const { code, emit } = codeBuffer();
  // the two input rows' columns 2x … 2x+7 (bytes 8x on), split into their even and odd columns
  const half = (row: number, lanes: number[]): number[][] => [get(row), get(HX), i32c(3), [I32_SHL, I32_ADD], simd(V128_LOAD), mem(0, 0),
    get(row), get(HX), i32c(3), [I32_SHL, I32_ADD], simd(V128_LOAD), mem(0, 16), simd(I8X16_SHUFFLE), lanes];
  // the scalar max of column 2x of `row` (offset 0) or 2x+1 (offset 4) into m
  const one = (row: number, offset: number): number[][] => [get(row), get(HX), i32c(3), [I32_SHL, I32_ADD, F32_LOAD], mem(2, offset), set(HV), get(HV), get(HM), get(HV), get(HM), [F32_GT, SELECT], set(HM)];
  emit(get(HOUTW), i32c(-4), [I32_AND], set(HX4), i32c(0), set(HL));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(HL), get(HPLANES), [I32_GE_U, BR_IF, 1]);
  emit(i32c(0), set(HY));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(HY), get(HOUTH), [I32_GE_U, BR_IF, 1]);
  emit(get(HSRC), get(HL), get(HPLANE), [I32_MUL, I32_ADD], get(HY), i32c(1), [I32_SHL], get(HROW), [I32_MUL, I32_ADD], set(HR0), get(HR0), get(HROW), [I32_ADD], set(HR1));
  emit(i32c(0), set(HX));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(HX), get(HX4), [I32_GE_U, BR_IF, 1]);
  emit(...half(HR0, EVEN_LANES), set(HA), ...half(HR0, ODD_LANES), set(HB), get(HA), get(HB), simd(F32X4_PMAX));
  emit(...half(HR1, EVEN_LANES), simd(F32X4_PMAX), ...half(HR1, ODD_LANES), simd(F32X4_PMAX), set(HA));
  emit(get(HDST), get(HA), simd(V128_STORE), mem(0, 0), get(HDST), i32c(16), [I32_ADD], set(HDST));
  emit(get(HX), i32c(4), [I32_ADD], set(HX), [BR, 0, END, END]);
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(HX), get(HOUTW), [I32_GE_U, BR_IF, 1]);
  emit(get(HR0), get(HX), i32c(3), [I32_SHL, I32_ADD, F32_LOAD], mem(2, 0), set(HM), ...one(HR0, 4), ...one(HR1, 0), ...one(HR1, 4));
  emit(get(HDST), get(HM), [F32_STORE], mem(2, 0), get(HDST), i32c(4), [I32_ADD], set(HDST));
  emit(get(HX), i32c(1), [I32_ADD], set(HX), [BR, 0, END, END]);
  emit(get(HY), i32c(1), [I32_ADD], set(HY), [BR, 0, END, END]);
  emit(get(HL), i32c(1), [I32_ADD], set(HL), [BR, 0, END, END]);
  return functionBody([[6, I32], [2, F32], [2, V128]], code);
}

// averagePool's parameters and locals
const ASRC = 0, APLANES = 1, APLANE = 2, APOS = 3, ASTARTS = 4, AGROUPS = 5, AOFF = 6, ATERMS = 7, ADIV = 8, ADST = 9;
const AL = 10, AP = 11, AG = 12, AGEND = 13, AT = 14, ATEND = 15, ABASE = 16, ASP = 17, ATP = 18, ADP = 19, AM = 20, AS = 21;

function averagePoolKernel(): number[] {
  const { code, emit } = codeBuffer();
  const minusZero = [...f64c(-0), F32_DEMOTE_F64];
  // the element index stored at `table`[index] as a byte address into `base` (i32 tables, 4-byte entries)
  const entry = (table: number, index: number, offset: number): number[] => [...get(table), ...get(index), ...i32c(2), I32_SHL, I32_ADD, I32_LOAD, ...mem(2, offset)];
  emit(i32c(0), set(AL));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(AL), get(APLANES), [I32_GE_U, BR_IF, 1]);
  emit(get(ASRC), get(AL), get(APLANE), [I32_MUL, I32_ADD], set(ABASE), get(ASTARTS), set(ASP), get(ATERMS), set(ATP), get(ADIV), set(ADP), i32c(0), set(AP));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(AP), get(APOS), [I32_GE_U, BR_IF, 1]);
  emit(get(ASP), [I32_LOAD], mem(2, 0), set(AG), get(ASP), [I32_LOAD], mem(2, 4), set(AGEND), minusZero, set(AM));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(AG), get(AGEND), [I32_GE_U, BR_IF, 1]);
  emit(entry(AGROUPS, AG, 0), set(AT), entry(AGROUPS, AG, 4), set(ATEND), minusZero, set(AS));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(AT), get(ATEND), [I32_GE_U, BR_IF, 1]);
  emit(get(AS), get(ABASE), entry(AOFF, AT, 0), [I32_ADD, F32_LOAD], mem(2, 0), [F32_ADD], set(AS));
  emit(get(AT), i32c(1), [I32_ADD], set(AT), [BR, 0, END, END]);
  emit(get(AM), get(AS), [F32_ADD], set(AM), get(AG), i32c(1), [I32_ADD], set(AG), [BR, 0, END, END]);
  emit(get(ADST), get(AM), get(ATP), [F32_LOAD], mem(2, 0), [F32_ADD], get(ADP), [F32_LOAD], mem(2, 0), [F32_DIV, F32_STORE], mem(2, 0));
  emit(get(ADST), i32c(4), [I32_ADD], set(ADST), get(ASP), i32c(4), [I32_ADD], set(ASP));
  emit(get(ATP), i32c(4), [I32_ADD], set(ATP), get(ADP), i32c(4), [I32_ADD], set(ADP));
  emit(get(AP), i32c(1), [I32_ADD], set(AP), [BR, 0, END, END]);
  emit(get(AL), i32c(1), [I32_ADD], set(AL), [BR, 0, END, END]);
  return functionBody([[10, I32], [2, F32]], code);
}

let compiled: object | null | undefined;

function convModule(): object {
  if (compiled === undefined) {
    compiled = compile(moduleBytes([
      { name: 'gather', params: [I32, I32, I32, I32], results: [], body: gatherKernel() },
      { name: 'toChannels', params: [I32, I32, I32, I32, I32, F32, F32], results: [], body: toChannelsKernel() },
      { name: 'maxPool', params: new Array(7).fill(I32), results: [], body: maxPoolKernel() },
      { name: 'maxPool2x2', params: new Array(7).fill(I32), results: [], body: maxPool2x2Kernel() },
      { name: 'averagePool', params: new Array(10).fill(I32), results: [], body: averagePoolKernel() },
    ]));
  }
  if (!compiled) throw new Error('analog Conv layers need WebAssembly with SIMD (as onnxruntime-web does)');
  return compiled;
}

/** The kernels and the memory they work in; addresses are byte offsets into it. */
export class ConvKernels {
  readonly gather: (src: number, offsets: number, n: number, dst: number) => void;
  readonly toChannels: (src: number, positions: number, m: number, bias: number, dst: number, lo: number, hi: number) => void;
  readonly maxPool: (src: number, planes: number, planeBytes: number, positions: number, starts: number, offsets: number, dst: number) => void;
  readonly maxPool2x2: (src: number, planes: number, planeBytes: number, rowBytes: number, outH: number, outW: number, dst: number) => void;
  readonly averagePool: (src: number, planes: number, planeBytes: number, positions: number, starts: number, groups: number, offsets: number, terms: number, divisors: number, dst: number) => void;
  readonly #memory: WasmMemory;
  f32!: Float32Array;
  i32!: Int32Array;

  constructor() {
    const module = convModule();
    this.#memory = new wasmApi!.Memory({ initial: 1 });
    const exports = instantiate(module, this.#memory) as Pick<ConvKernels, 'gather' | 'toChannels' | 'maxPool' | 'maxPool2x2' | 'averagePool'>;
    this.gather = exports.gather;
    this.toChannels = exports.toChannels;
    this.maxPool = exports.maxPool;
    this.maxPool2x2 = exports.maxPool2x2;
    this.averagePool = exports.averagePool;
    this.#views();
  }

  /** Grows the memory to at least `bytes`; views taken before are then stale (f32 and i32 are renewed). */
  reserve(bytes: number): void {
    const have = this.#memory.buffer.byteLength;
    if (bytes <= have) return;
    this.#memory.grow(Math.ceil((bytes - have) / PAGE));
    this.#views();
  }

  #views(): void {
    this.f32 = new Float32Array(this.#memory.buffer);
    this.i32 = new Int32Array(this.#memory.buffer);
  }
}
