/**
 * One linear memory per emulator for everything the MVM kernels touch (effective weights, read-noise
 * variances, input lists, accumulators), so the WebAssembly kernels read it in place. Growing the
 * memory detaches every typed-array view: holders compare `generation` and re-create theirs.
 */
import { kernels as jsKernels } from './kernels.js';
import { wasmApi, type WasmMemory } from '../../runtime/wasm/assembler.js';
import { instantiateSimdKernels, type Kernels } from './wasm-kernels.js';

const PAGE = 65536;
const ALIGN = 16;

/** Without WebAssembly: a memory that grows by copying into a larger ArrayBuffer. */
class PlainMemory implements WasmMemory {
  buffer = new ArrayBuffer(PAGE);
  grow(pages: number): number {
    const old = this.buffer;
    this.buffer = new ArrayBuffer(old.byteLength + pages * PAGE);
    new Uint8Array(this.buffer).set(new Uint8Array(old));
    return old.byteLength / PAGE;
  }
}

export class Arena {
  readonly memory: WasmMemory = wasmApi ? new wasmApi.Memory({ initial: 1 }) : new PlainMemory();
  readonly kernels: Kernels;
  /** Bumped whenever the memory grows (all views are then stale). */
  generation = 0;
  f32 = new Float32Array(0);
  f64 = new Float64Array(0);
  i32 = new Int32Array(0);
  #top = ALIGN; // address 0 stays unused
  readonly #free: { ptr: number; bytes: number }[] = [];

  constructor(options: { simd?: boolean } = {}) {
    this.#refresh();
    this.kernels = (options.simd ?? true ? instantiateSimdKernels(this.memory) : null) ?? jsKernels(this);
  }

  /** A 16-byte-aligned block of at least `bytes`; never moves, may grow the memory. */
  alloc(bytes: number): number {
    const size = Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN;
    const i = this.#free.findIndex((b) => b.bytes >= size);
    if (i >= 0) {
      const block = this.#free[i]!;
      const ptr = block.ptr;
      if (block.bytes === size) this.#free.splice(i, 1);
      else { block.ptr += size; block.bytes -= size; }
      return ptr;
    }
    const ptr = this.#top;
    this.#top += size;
    const have = this.memory.buffer.byteLength;
    if (this.#top > have) {
      this.memory.grow(Math.ceil((this.#top - have) / PAGE));
      this.generation++;
      this.#refresh();
    }
    return ptr;
  }

  free(ptr: number, bytes: number): void {
    if (ptr) this.#free.push({ ptr, bytes: Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN });
  }

  #refresh(): void {
    this.f32 = new Float32Array(this.memory.buffer);
    this.f64 = new Float64Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }
}
