/**
 * Work areas in the arena (byte addresses), shared by the tiles of one emulator: MVMs run one at a
 * time (the kernels are synchronous). `single` serves one vector through mvm32 (and its bound-management
 * rounds); `batch(n)` serves a whole batch through gemm32 and grows on demand.
 */
import type { Arena } from './arena.js';
import { zigguratTables } from './random.js';

export interface SingleAreas {
  /** The vector (f32) and its |x|max (f64). */
  x: number;
  xmax: number;
  /** Its non-zero rows (i32) and their inputs (f32), their DAC codes (f32) and squared codes (f32). */
  idx: number;
  xs: number;
  xv: number;
  xv2: number;
  /** Column accumulators and read-noise variances (f32). */
  acc: number;
  accVar: number;
  /** Standard normals (f64), the back factor (f64), outputs (f32) and the saturation flag (i32) of the ADC kernel. */
  normals: number;
  back: number;
  out: number;
  flags: number;
}

export interface BatchAreas {
  /** The vectors as given (f32), vector v's at +v·rows elements; their |x|max (f64). */
  raw: number;
  xmax: number;
  /** DAC codes and squared codes (f32), vector v's at +v·rows elements. */
  x: number;
  x2: number;
  /** A bound-management round's vectors (i32) and their DAC factors (f64), for dacPicked. */
  picks: number;
  invs: number;
  /** Accumulators and variances (f32), vector v's at +v·stride elements (or denser). */
  acc: number;
  accVar: number;
  /** The ADC kernel's standard normals (f64), back factors (f64), outputs (f32) and saturation flags (i32), densely per vector. */
  normals: number;
  backs: number;
  out: number;
  flags: number;
}

export class WorkAreas {
  readonly single: SingleAreas;
  /** The normals kernel's ziggurat tables (f64) and a generator's state while it runs (4 i32). */
  readonly tables: number;
  readonly rngState: number;
  #batch: BatchAreas | null = null;
  #capacity = 0;

  /** `rows` and `stride` (padded columns) are the largest a tile of the device can have. */
  constructor(private readonly arena: Arena, private readonly rows: number, private readonly stride: number) {
    const a = arena;
    this.single = {
      x: a.alloc(4 * rows), xmax: a.alloc(8), idx: a.alloc(4 * rows), xs: a.alloc(4 * rows), xv: a.alloc(4 * rows), xv2: a.alloc(4 * rows), acc: a.alloc(4 * stride), accVar: a.alloc(4 * stride),
      normals: a.alloc(8 * stride), back: a.alloc(8), out: a.alloc(4 * stride), flags: a.alloc(4),
    };
    const tables = zigguratTables();
    this.tables = a.alloc(tables.byteLength);
    a.f64.set(tables, this.tables >> 3);
    this.rngState = a.alloc(16);
  }

  /** Areas for `n` vectors (rounded up to a multiple of four, gemm32's block). */
  batch(n: number): BatchAreas {
    if (n > this.#capacity) {
      if (this.#batch) for (const [k, bytes] of Object.entries(this.#sizes(this.#capacity))) this.arena.free(this.#batch[k as keyof BatchAreas], bytes);
      this.#capacity = Math.max(Math.ceil(n / 4) * 4, 2 * this.#capacity);
      const s = this.#sizes(this.#capacity);
      const a = this.arena;
      this.#batch = {
        raw: a.alloc(s.raw), xmax: a.alloc(s.xmax), x: a.alloc(s.x), x2: a.alloc(s.x2), picks: a.alloc(s.picks), invs: a.alloc(s.invs), acc: a.alloc(s.acc), accVar: a.alloc(s.accVar),
        normals: a.alloc(s.normals), backs: a.alloc(s.backs), out: a.alloc(s.out), flags: a.alloc(s.flags),
      };
    }
    return this.#batch!;
  }

  #sizes(n: number): Record<keyof BatchAreas, number> {
    const { rows, stride } = this;
    return { raw: 4 * n * rows, xmax: 8 * n, x: 4 * n * rows, x2: 4 * n * rows, picks: 4 * n, invs: 8 * n, acc: 4 * n * stride, accVar: 4 * n * stride, normals: 8 * n * stride, backs: 8 * n, out: 4 * n * stride, flags: 4 * n };
  }
}
