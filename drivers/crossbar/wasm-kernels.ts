/**
 * The MVM kernels as a WebAssembly SIMD module, assembled here from the instruction listing below
 * (no toolchain, nothing downloaded: the bytes are built at load time and checked with
 * WebAssembly.validate; without SIMD support the caller falls back to kernels.ts).
 *
 * Both kernels walk a list of active rows (inputs that are not zero) and add x·row into per-column
 * accumulators, four rows per pass over the columns so each accumulator vector is loaded and
 * stored once per four rows. Weights are float32 rows of `stride` bytes (columns padded to a
 * multiple of four with zeros).
 *
 *   mvm32(w, stride, idx, xv, n, acc, vecs)  f32x4 accumulation: acc[c] = Σ_k xv[k]·w[idx[k]][c]
 *   mvm64(w, stride, idx, xv, n, acc, vecs)  f64x2 accumulation (weights promoted), xv and acc f64
 *   jobs32(table, count)                     mvm32 over a table of argument sets: one call per batch
 *
 * All arguments are i32 byte addresses or counts; `vecs` = padded columns / 4. In text form, mvm32:
 *
 *   end = vecs << 4;  for (cb = 0; cb < end; cb += 16) v128.store(acc + cb, 0)
 *   for (k = 0; k + 4 <= n; k += 4) {
 *     p_j = w + i32.load(idx + 4k + 4j)·stride;  x_j = v128.load32_splat(xv + 4k + 4j)   (j = 0..3)
 *     for (cb = 0; cb < end; cb += 16)
 *       v128.store(acc + cb, acc[cb] + x_0·v128.load(p_0 + cb) + … + x_3·v128.load(p_3 + cb))
 *   }
 *   for (; k < n; k++) { the same with one row }
 *
 * mvm64 is the same with 8-byte xv and acc; each 16-byte weight load becomes two f64x2 halves
 * (v128.load64_splat at +0 and +8, then f64x2.promote_low_f32x4).
 */

// Opcodes (WebAssembly core spec §5.4; SIMD instructions after the 0xFD prefix).
const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22;
const I32_LOAD = 0x28, I32_CONST = 0x41, I32_EQZ = 0x45, I32_GE_U = 0x4f, I32_GT_U = 0x4b, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_MUL = 0x6c, I32_SHL = 0x74;
const EMPTY = 0x40, I32 = 0x7f, V128 = 0x7b;
const V128_LOAD = 0x00, V128_LOAD32_SPLAT = 0x09, V128_LOAD64_SPLAT = 0x0a, V128_STORE = 0x0b, V128_CONST = 0x0c;
const F64X2_PROMOTE_LOW_F32X4 = 0x5f, F32X4_ADD = 0xe4, F32X4_MUL = 0xe6, F64X2_ADD = 0xf0, F64X2_MUL = 0xf2;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const mem = (alignLog2: number, offset: number): number[] => [alignLog2, ...uleb(offset)];
const get = (i: number): number[] => [LOCAL_GET, i];
const set = (i: number): number[] => [LOCAL_SET, i];
const i32c = (v: number): number[] => [I32_CONST, ...sleb(v)];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...s].map((ch) => [ch.charCodeAt(0)]));

// Parameters and locals of the kernels; the job-table variants take (table, count) first and hold
// the seven kernel arguments in locals, so every index shifts by two.
const W = 0, STRIDE = 1, IDX = 2, XV = 3, N = 4, ACC = 5, VECS = 6;
const K = 7, CB = 8, END_ = 9, P0 = 10, A = 14, X0 = 15; // p0..p3 = 10..13, x0..x3 = 15..18
const TABLE = 0, COUNT = 1;
/** Bytes per job-table entry: the seven i32 kernel arguments. */
export const JOB_BYTES = 28;

function kernel(wide: boolean, jobs: boolean): number[] {
  const o = jobs ? 2 : 0;
  const xShift = wide ? 3 : 2; // bytes per xv element: 8 or 4
  const code: number[] = [];
  const emit = (...parts: number[][]): void => { for (const p of parts) code.push(...p); };
  const L = (i: number): number => i + o;
  if (jobs) {
    // for (; count > 0; count--, table += 28) { load the seven arguments; the kernel body }
    emit([BLOCK, EMPTY, LOOP, EMPTY], get(COUNT), [I32_EQZ, BR_IF, 1]);
    for (let i = 0; i < 7; i++) emit(get(TABLE), [I32_LOAD], mem(2, 4 * i), set(L(i)));
  }
  // end = vecs << 4 (bytes of weights per row); zero the accumulators (twice as many bytes if wide)
  emit(get(L(VECS)), i32c(wide ? 5 : 4), [I32_SHL], set(L(END_)));
  emit(i32c(0), set(L(CB)), [BLOCK, EMPTY, LOOP, EMPTY], get(L(CB)), get(L(END_)), [I32_GE_U, BR_IF, 1]);
  emit(get(L(ACC)), get(L(CB)), [I32_ADD], simd(V128_CONST), new Array<number>(16).fill(0), simd(V128_STORE), mem(0, 0));
  emit(get(L(CB)), i32c(16), [I32_ADD], set(L(CB)), [BR, 0, END, END]);
  if (wide) emit(get(L(VECS)), i32c(4), [I32_SHL], set(L(END_))); // from here on END_ counts weight bytes
  const rowSetup = (j: number): void => {
    // p_j = w + idx[k + j]·stride; x_j = splat(xv[k + j])
    emit(get(L(W)), get(L(IDX)), get(L(K)), i32c(2), [I32_SHL, I32_ADD, I32_LOAD], mem(2, 4 * j), get(L(STRIDE)), [I32_MUL, I32_ADD], set(L(P0 + j)));
    emit(get(L(XV)), get(L(K)), i32c(xShift), [I32_SHL, I32_ADD], simd(wide ? V128_LOAD64_SPLAT : V128_LOAD32_SPLAT), mem(wide ? 3 : 2, (wide ? 8 : 4) * j), set(L(X0 + j)));
  };
  const columns = (rows: number): void => {
    emit(i32c(0), set(L(CB)), [BLOCK, EMPTY, LOOP, EMPTY], get(L(CB)), get(L(END_)), [I32_GE_U, BR_IF, 1]);
    if (!wide) {
      emit(get(L(ACC)), get(L(CB)), [I32_ADD, LOCAL_TEE, L(A)], get(L(A)), simd(V128_LOAD), mem(0, 0));
      for (let j = 0; j < rows; j++) emit(get(L(X0 + j)), get(L(P0 + j)), get(L(CB)), [I32_ADD], simd(V128_LOAD), mem(0, 0), simd(F32X4_MUL), simd(F32X4_ADD));
      emit(simd(V128_STORE), mem(0, 0));
    } else {
      emit(get(L(ACC)), get(L(CB)), i32c(1), [I32_SHL, I32_ADD, LOCAL_TEE, L(A)]);
      for (const half of [0, 8]) {
        if (half) emit(get(L(A)));
        emit(get(L(A)), simd(V128_LOAD), mem(0, 2 * half));
        for (let j = 0; j < rows; j++) {
          emit(get(L(P0 + j)), get(L(CB)), [I32_ADD], simd(V128_LOAD64_SPLAT), mem(0, half), simd(F64X2_PROMOTE_LOW_F32X4), get(L(X0 + j)), simd(F64X2_MUL), simd(F64X2_ADD));
        }
        emit(simd(V128_STORE), mem(0, 2 * half));
      }
    }
    emit(get(L(CB)), i32c(16), [I32_ADD], set(L(CB)), [BR, 0, END, END]);
  };
  // Four active rows at a time.
  emit(i32c(0), set(L(K)), [BLOCK, EMPTY, LOOP, EMPTY], get(L(K)), i32c(4), [I32_ADD], get(L(N)), [I32_GT_U, BR_IF, 1]);
  for (let j = 0; j < 4; j++) rowSetup(j);
  columns(4);
  emit(get(L(K)), i32c(4), [I32_ADD], set(L(K)), [BR, 0, END, END]);
  // The remaining rows one by one.
  emit([BLOCK, EMPTY, LOOP, EMPTY], get(L(K)), get(L(N)), [I32_GE_U, BR_IF, 1]);
  rowSetup(0);
  columns(1);
  emit(get(L(K)), i32c(1), [I32_ADD], set(L(K)), [BR, 0, END, END]);
  if (jobs) emit(get(TABLE), i32c(JOB_BYTES), [I32_ADD], set(TABLE), get(COUNT), i32c(1), [I32_SUB], set(COUNT), [BR, 0, END, END]);
  const locals = vec(jobs ? [[...uleb(15), I32], [...uleb(4), V128]] : [[...uleb(8), I32], [...uleb(4), V128]]);
  const body = [...locals, ...code, END];
  return [...uleb(body.length), ...body];
}

/** The module's bytes: memory imported as e.m, kernels exported as mvm32 / mvm64. */
export function kernelModuleBytes(): Uint8Array {
  const direct = [0x60, ...vec(new Array(7).fill([I32])), ...vec([])];
  const table = [0x60, ...vec([[I32], [I32]]), ...vec([])];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([direct, table])),
    ...section(2, vec([[...name('e'), ...name('m'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([[0], [0], [1]])),
    ...section(7, vec([[...name('mvm32'), 0x00, 0], [...name('mvm64'), 0x00, 1], [...name('jobs32'), 0x00, 2]])),
    ...section(10, vec([kernel(false, false), kernel(true, false), kernel(false, true)])),
  ]);
}

export type KernelFn = (w: number, stride: number, idx: number, xv: number, n: number, acc: number, vecs: number) => void;
/** Runs mvm32 once per entry of a table of `count` argument sets (JOB_BYTES each) at `table`. */
export type JobsFn = (table: number, count: number) => void;
export interface Kernels { mvm32: KernelFn; mvm64: KernelFn; jobs32: JobsFn; simd: boolean }

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
export interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
}
export const wasmApi: WasmApi | undefined = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;

/** The SIMD kernels bound to `memory`, or null when this engine has no WebAssembly SIMD. */
export function instantiateSimdKernels(memory: WasmMemory): Kernels | null {
  if (compiled === undefined) {
    const bytes = kernelModuleBytes();
    compiled = wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
  }
  if (!compiled || !wasmApi) return null;
  const exports = new wasmApi.Instance(compiled, { e: { m: memory } }).exports as unknown as Omit<Kernels, 'simd'>;
  return { mvm32: exports.mvm32, mvm64: exports.mvm64, jobs32: exports.jobs32, simd: true };
}
