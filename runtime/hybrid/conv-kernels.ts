/**
 * Conv's data movement around the crossbar as scalar WebAssembly kernels in a memory of their own:
 * im2col's gather and the way back from patch-major outputs to ONNX's channel-major layout with the
 * bias added. These loops move every activation of a conv layer; in plain JS the gather cost 5.6 ns
 * per element on the CI machine, the kernel 1.9 ns (bench/analog's CNN went from 2.8× to 1.6× of
 * digital). They only copy, and add in float32 (as JS does when it stores a float64 sum of two
 * float32s), so results are bit-identical to the JS loops they replaced.
 *
 *   gather(src, offsets, n, dst)              dst[i] = f32 at src + offsets[i]   (offsets in bytes)
 *   toChannels(src, positions, m, bias, dst)  dst[c·positions + p] = src[p·m + c] + bias[c]
 */
import {
  BLOCK, LOOP, END, BR, BR_IF, I32_LOAD, I32_GE_U, I32_ADD, I32_SHL, EMPTY, I32, F32, F32_LOAD, F32_STORE, F32_ADD,
  mem, get, set, i32c, codeBuffer, functionBody, moduleBytes, compile, instantiate, wasmApi, type WasmMemory,
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

// toChannels' parameters and locals
const TSRC = 0, TPOS = 1, TM = 2, TBIAS = 3, TDST = 4, TC = 5, TS = 6, TP = 7, TROW = 8, TB = 9;

function toChannelsKernel(): number[] {
  const { code, emit } = codeBuffer();
  emit(get(TM), i32c(2), [I32_SHL], set(TROW), i32c(0), set(TC));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(TC), get(TM), [I32_GE_U, BR_IF, 1]);
  emit(get(TBIAS), get(TC), i32c(2), [I32_SHL, I32_ADD, F32_LOAD], mem(2, 0), set(TB));
  emit(get(TSRC), get(TC), i32c(2), [I32_SHL, I32_ADD], set(TS), i32c(0), set(TP));
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(TP), get(TPOS), [I32_GE_U, BR_IF, 1]);
  emit(get(TDST), get(TS), [F32_LOAD], mem(2, 0), get(TB), [F32_ADD, F32_STORE], mem(2, 0));
  emit(get(TDST), i32c(4), [I32_ADD], set(TDST), get(TS), get(TROW), [I32_ADD], set(TS));
  emit(get(TP), i32c(1), [I32_ADD], set(TP), [BR, 0, END, END]);
  emit(get(TC), i32c(1), [I32_ADD], set(TC), [BR, 0, END, END]);
  return functionBody([[4, I32], [1, F32]], code);
}

let compiled: object | null | undefined;

function convModule(): object {
  if (compiled === undefined) {
    compiled = compile(moduleBytes([
      { name: 'gather', params: [I32, I32, I32, I32], results: [], body: gatherKernel() },
      { name: 'toChannels', params: [I32, I32, I32, I32, I32], results: [], body: toChannelsKernel() },
    ]));
  }
  if (!compiled) throw new Error('analog Conv layers need WebAssembly (as onnxruntime-web does)');
  return compiled;
}

/** The kernels and the memory they work in; addresses are byte offsets into it. */
export class ConvKernels {
  readonly gather: (src: number, offsets: number, n: number, dst: number) => void;
  readonly toChannels: (src: number, positions: number, m: number, bias: number, dst: number) => void;
  readonly #memory: WasmMemory;
  f32!: Float32Array;
  i32!: Int32Array;

  constructor() {
    const module = convModule();
    this.#memory = new wasmApi!.Memory({ initial: 1 });
    const exports = instantiate(module, this.#memory) as Pick<ConvKernels, 'gather' | 'toChannels'>;
    this.gather = exports.gather;
    this.toChannels = exports.toChannels;
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
