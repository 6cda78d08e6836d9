/**
 * Just enough of the WebAssembly binary format to assemble small kernels from their instruction
 * listings at load time: no toolchain, nothing downloaded. Opcodes follow the core spec §5.4 (SIMD
 * instructions after the 0xFD prefix); a module imports its memory as e.m and exports functions.
 */

export const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR = 0x0c, BR_IF = 0x0d;
export const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22;
export const I32_LOAD = 0x28, I32_CONST = 0x41, I32_GE_U = 0x4f, I32_LE_S = 0x4c, I32_GT_U = 0x4b, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_MUL = 0x6c, I32_SHL = 0x74;
export const EMPTY = 0x40, I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;
export const CALL = 0x10, I32_EQ = 0x46, F64_NEG = 0x9a, F64_CONVERT_I32_U = 0xb8;
export const IF = 0x04, ELSE = 0x05, SELECT = 0x1b, I32_STORE = 0x36, F32_LOAD = 0x2a, F32_STORE = 0x38, F64_STORE = 0x39, F64_CONST = 0x44;
export const I32_LT_S = 0x48, F32_NE = 0x5c, F32_LT = 0x5d, F32_GT = 0x5e, F32_DIV = 0x95;
export const I32_EQZ = 0x45, I32_AND = 0x71, I32_XOR = 0x73, I32_SHR_S = 0x75, I32_ROTL = 0x77, I32_NE = 0x47, RETURN = 0x0f, F64_CONVERT_I32_S = 0xb7, F64_LOAD = 0x2b, F64_SQRT = 0x9f, F64_EQ = 0x61, F64_NE = 0x62, F64_LT = 0x63, F64_GT = 0x64, F64_LE = 0x65;
export const F64_ABS = 0x99, F64_FLOOR = 0x9c, F64_ADD = 0xa0, F64_SUB = 0xa1, F64_MUL = 0xa2, F64_DIV = 0xa3, F64_MIN = 0xa4, F64_MAX = 0xa5;
export const F32_ABS = 0x8b, F32_MAX = 0x97, F32_ADD = 0x92, F32_MUL = 0x94, F32_DEMOTE_F64 = 0xb6, F64_PROMOTE_F32 = 0xbb;
export const V128_LOAD = 0x00, V128_LOAD32_SPLAT = 0x09, V128_STORE = 0x0b, V128_CONST = 0x0c, V128_LOAD64_ZERO = 0x5d, V128_STORE64_LANE = 0x5b;
export const F32X4_EXTRACT_LANE = 0x1f, F32X4_ABS = 0xe0, F32X4_MAX = 0xe9, F32X4_ADD = 0xe4, F32X4_MUL = 0xe6, F32X4_DEMOTE_F64X2_ZERO = 0x5e;
export const V128_OR = 0x50, V128_ANY_TRUE = 0x53, F64X2_LT = 0x49, F64X2_GT = 0x4a, F64X2_SQRT = 0xef;
export const F64X2_SPLAT = 0x14, F64X2_PROMOTE_LOW_F32X4 = 0x5f, F64X2_FLOOR = 0x75, F64X2_ADD = 0xf0, F64X2_MUL = 0xf2, F64X2_DIV = 0xf3, F64X2_MIN = 0xf4, F64X2_MAX = 0xf5;
/** pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a: one instruction each on x64, where min/max need ~8 for NaN and ±0. */
export const F64X2_PMIN = 0xf6, F64X2_PMAX = 0xf7, F32X4_PMIN = 0xea, F32X4_PMAX = 0xeb, F32X4_NE = 0x42, F32X4_SPLAT = 0x13, V128_STORE32_LANE = 0x5a;
/** i8x16.shuffle, followed by its 16 lane indices into the two operands' 32 bytes. */
export const I8X16_SHUFFLE = 0x0d;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
export const mem = (alignLog2: number, offset: number): number[] => [alignLog2, ...uleb(offset)];
export const get = (i: number): number[] => [LOCAL_GET, i];
export const set = (i: number): number[] => [LOCAL_SET, i];
export const i32c = (v: number): number[] => [I32_CONST, ...sleb(v)];
export const f64c = (v: number): number[] => [F64_CONST, ...new Uint8Array(new Float64Array([v]).buffer)];
export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...s].map((ch) => [ch.charCodeAt(0)]));

/** A code buffer and `emit`, which appends instruction fragments to it. */
export function codeBuffer(): { code: number[]; emit: (...parts: number[][]) => void } {
  const code: number[] = [];
  return { code, emit: (...parts) => { for (const p of parts) code.push(...p); } };
}

/** A function body: its locals as [count, type] runs, then the code. */
export function functionBody(locals: [number, number][], code: number[]): number[] {
  const body = [...vec(locals.map(([n, t]) => [...uleb(n), t])), ...code, END];
  return [...uleb(body.length), ...body];
}

export interface KernelFunction {
  name: string;
  params: number[];
  results: number[];
  body: number[];
}

/** A function the module imports as e.<name> (called by index: imports come first, in order). */
export interface ImportedFunction {
  name: string;
  params: number[];
  results: number[];
}

/** A module that imports its memory as e.m (and `imports` as e.<name>) and exports each function under its name. */
export function moduleBytes(functions: KernelFunction[], imports: ImportedFunction[] = []): Uint8Array {
  const type = (f: ImportedFunction): number[] => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))];
  const first = imports.length;
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([...imports, ...functions].map(type))),
    ...section(2, vec([...imports.map((f, i) => [...name('e'), ...name(f.name), 0x00, ...uleb(i)]), [...name('e'), ...name('m'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec(functions.map((_, i) => uleb(first + i)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(first + i)]))),
    ...section(10, vec(functions.map((f) => f.body))),
  ]);
}

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
export interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
}
export const wasmApi: WasmApi | undefined = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** A compiled module, or null when this engine cannot run it (no WebAssembly, or no SIMD for a SIMD module). */
export function compile(bytes: Uint8Array): object | null {
  return wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
}

/** The module's exports with `memory` as its e.m and `functions` as its imported functions. */
export function instantiate(module: object, memory: WasmMemory, functions: Record<string, (...args: number[]) => number> = {}): Record<string, unknown> {
  return new wasmApi!.Instance(module, { e: { ...functions, m: memory } }).exports;
}
