/**
 * Per-vector work areas in the arena (byte addresses), shared by the tiles of one emulator: MVMs run
 * one at a time (the kernels are synchronous). `single` serves one vector (and bound-management
 * re-runs); `batch(n)` serves a whole batch in one kernel call and grows on demand.
 */
import type { Arena } from './arena.js';
import { JOB_BYTES } from './wasm-kernels.js';

export interface Areas {
  /** Active-row indices (i32), DAC codes (f32; f64 on the exact path) and their squares (f32). */
  idx: number;
  xv: number;
  xv2: number;
  /** Column accumulators (f32; f64 on the exact path) and read-noise variances (f32). */
  acc: number;
  accVar: number;
  /** Job table for jobs32: two entries per vector. */
  jobs: number;
}

export class WorkAreas {
  readonly single: Areas;
  #batch: Areas | null = null;
  #capacity = 0;

  /** `rows` and `stride` (columns padded to four) are the largest a tile of the device can have. */
  constructor(private readonly arena: Arena, private readonly rows: number, private readonly stride: number) {
    this.single = this.#alloc(1);
  }

  /** Areas for `n` vectors, vector b's lists at +b·rows elements and accumulators at +b·stride. */
  batch(n: number): Areas {
    if (n > this.#capacity) {
      if (this.#batch) this.#free(this.#batch, this.#capacity);
      this.#capacity = Math.max(n, 2 * this.#capacity);
      this.#batch = this.#alloc(this.#capacity);
    }
    return this.#batch!;
  }

  #sizes(n: number): Record<keyof Areas, number> {
    const { rows, stride } = this;
    return { idx: 4 * n * rows, xv: 8 * n * rows, xv2: 4 * n * rows, acc: 8 * n * stride, accVar: 4 * n * stride, jobs: 2 * n * JOB_BYTES };
  }

  #alloc(n: number): Areas {
    const s = this.#sizes(n);
    const a = this.arena;
    return { idx: a.alloc(s.idx), xv: a.alloc(s.xv), xv2: a.alloc(s.xv2), acc: a.alloc(s.acc), accVar: a.alloc(s.accVar), jobs: a.alloc(s.jobs) };
  }

  #free(areas: Areas, n: number): void {
    const s = this.#sizes(n);
    for (const k of Object.keys(s) as (keyof Areas)[]) this.arena.free(areas[k], s[k]);
  }
}
