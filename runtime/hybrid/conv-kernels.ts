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
 *   averagePool(src, planes, planeBytes, positions, starts, groups, offsets, terms, divisors, dst)
 *        per plane and output position p: (Σ over its groups g in starts[p] … starts[p+1] of the
 *        float32 sum of the f32 at src + plane·planeBytes + offsets[t] for t in groups[g] … groups[g+1])
 *        + terms[p], ÷ divisors[p] — each sum in order and from −0 (so it starts with its first
 *        element exactly), which reproduces onnxruntime's (MLAS') order of additions bit for bit
 */
import {
  BLOCK, LOOP, END, BR, BR_IF, I32_LOAD, I32_GE_U, I32_ADD, I32_MUL, I32_SHL, EMPTY, I32, F32, F32_LOAD, F32_STORE, F32_ADD,
  F32_DIV, F32_LT, F32_GT, F32_DEMOTE_F64, SELECT, I32_AND, V128, V128_LOAD, F32X4_ADD, F32X4_PMAX, F32X4_PMIN, F32X4_SPLAT, V128_STORE32_LANE, simd, mem, get, set, i32c, f64c, codeBuffer, functionBody, moduleBytes, compile, instantiate, wasmApi,
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
  readonly averagePool: (src: number, planes: number, planeBytes: number, positions: number, starts: number, groups: number, offsets: number, terms: number, divisors: number, dst: number) => void;
  readonly #memory: WasmMemory;
  f32!: Float32Array;
  i32!: Int32Array;

  constructor() {
    const module = convModule();
    this.#memory = new wasmApi!.Memory({ initial: 1 });
    const exports = instantiate(module, this.#memory) as Pick<ConvKernels, 'gather' | 'toChannels' | 'maxPool' | 'averagePool'>;
    this.gather = exports.gather;
    this.toChannels = exports.toChannels;
    this.maxPool = exports.maxPool;
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
