/**
 * Persistent stuck-at faults in front of a real CrossbarDriver: a seeded fraction of the cells of
 * chosen tiles hold a fixed value whatever is programmed (a device stuck in its crystalline or
 * erased state), and the same cells stay stuck when the tile is re-programmed. The emulator's own
 * profile faults are drawn afresh at every program(), so re-programming would "heal" them; real
 * stuck cells do not heal.
 */
import type { CrossbarDriver } from '../../runtime/accelerator.js';

interface Block { weights: Float32Array; rows: number; cols: number }

export class StuckCells implements CrossbarDriver {
  /** Fraction of stuck cells per faulty tile. */
  readonly #faulty = new Map<number, number>();
  readonly #programmed = new Map<number, Block>();

  constructor(readonly inner: CrossbarDriver, private readonly seed = 1) {}

  /** Sticks `fraction` of the cells of `tileIds` (half at + full scale, half at 0); programmed tiles are hit at once. */
  async inject(tileIds: readonly number[], fraction: number): Promise<void> {
    for (const id of tileIds) {
      this.#faulty.set(id, fraction);
      const b = this.#programmed.get(id);
      if (b) await this.#program(id, b);
    }
  }

  /** Every tile of the device. */
  get allTiles(): number[] {
    return Array.from({ length: this.inner.info().tiles }, (_, i) => i);
  }

  /** Clears every fault (a repaired device); programmed tiles are re-programmed. */
  async heal(): Promise<void> {
    const ids = [...this.#faulty.keys()];
    this.#faulty.clear();
    for (const id of ids) { const b = this.#programmed.get(id); if (b) await this.#program(id, b); }
  }

  info() { return this.inner.info(); }

  async program(tileId: number, weights: Float32Array, rows: number, cols: number): Promise<void> {
    const b = { weights: weights.slice(), rows, cols };
    this.#programmed.set(tileId, b);
    await this.#program(tileId, b);
  }

  async #program(tileId: number, b: Block): Promise<void> {
    const fraction = this.#faulty.get(tileId) ?? 0;
    const w = b.weights.slice();
    // The same cells of a tile are chosen every time (seeded by tile and cell position).
    let s = (Math.imul(tileId + 1, 0x9e3779b1) ^ this.seed) >>> 0;
    const rand = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
    for (let c = 0; c < b.cols; c++) {
      let max = 0;
      for (let r = 0; r < b.rows; r++) max = Math.max(max, Math.abs(w[r * b.cols + c]!));
      for (let r = 0; r < b.rows; r++) {
        const u = rand();
        if (u < fraction) w[r * b.cols + c] = u < fraction / 2 ? max : 0;
      }
    }
    await this.inner.program(tileId, w, b.rows, b.cols);
  }

  mvm(tileId: number, x: Float32Array, batch: number) { return this.inner.mvm(tileId, x, batch); }
  calibrate(tileId: number) { return this.inner.calibrate(tileId); }
  readConductances(tileId: number) { return this.inner.readConductances(tileId); }
  setAge(seconds: number) { return this.inner.setAge(seconds); }
  temperature() { return this.inner.temperature(); }
  health() { return this.inner.health(); }
  counters() { return this.inner.counters(); }
  dispose() { return this.inner.dispose(); }
}
