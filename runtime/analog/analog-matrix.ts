/**
 * A weight matrix of any size on crossbar tiles: W (K inputs × N outputs) is cut into blocks of at
 * most tileRows × tileCols, one tile each; partial sums over row blocks are added digitally and
 * column blocks concatenated — what analog chips do when a layer spans several cores.
 */
import type { CrossbarDriver } from '../accelerator.js';
import type { TileAllocator } from './tile-allocator.js';

interface Block { tileId: number; row0: number; rows: number; col0: number; cols: number }

export class AnalogMatrix {
  readonly blocks: Block[] = [];
  #xBlock = new Float32Array(0);
  #y = new Float32Array(0);

  constructor(
    private readonly driver: CrossbarDriver,
    allocator: TileAllocator,
    private readonly weights: Float32Array,
    readonly k: number,
    readonly n: number,
    what = 'matrix',
  ) {
    const { tileRows, tileCols } = allocator.info;
    const ids = allocator.allocate(allocator.tilesFor(k, n), `${what} (${k}×${n})`);
    let i = 0;
    for (let row0 = 0; row0 < k; row0 += tileRows) {
      for (let col0 = 0; col0 < n; col0 += tileCols) {
        this.blocks.push({ tileId: ids[i++]!, row0, rows: Math.min(tileRows, k - row0), col0, cols: Math.min(tileCols, n - col0) });
      }
    }
  }

  get tiles(): number[] {
    return this.blocks.map((b) => b.tileId);
  }

  /** Programs every block (again, e.g. after the device lost its state). */
  async program(): Promise<void> {
    for (const b of this.blocks) {
      const block = new Float32Array(b.rows * b.cols);
      for (let r = 0; r < b.rows; r++) {
        const src = (b.row0 + r) * this.n + b.col0;
        block.set(this.weights.subarray(src, src + b.cols), r * b.cols);
      }
      await this.driver.program(b.tileId, block, b.rows, b.cols);
    }
  }

  async calibrate(): Promise<void> {
    for (const b of this.blocks) await this.driver.calibrate(b.tileId);
  }

  /** y = x · W for `batch` rows of x (batch × K); returns a reused batch × N buffer. */
  async run(x: Float32Array, batch: number): Promise<Float32Array> {
    const { k, n } = this;
    if (this.#y.length < batch * n) this.#y = new Float32Array(batch * n);
    const y = this.#y.subarray(0, batch * n);
    y.fill(0);
    for (const b of this.blocks) {
      let input = x;
      if (b.rows !== k) {
        // Gather this block's slice of every input vector into a contiguous buffer.
        if (this.#xBlock.length < batch * b.rows) this.#xBlock = new Float32Array(batch * b.rows);
        input = this.#xBlock;
        for (let s = 0; s < batch; s++) input.set(x.subarray(s * k + b.row0, s * k + b.row0 + b.rows), s * b.rows);
      }
      const part = await this.driver.mvm(b.tileId, input, batch);
      for (let s = 0; s < batch; s++) {
        const yo = s * n + b.col0;
        const po = s * b.cols;
        for (let c = 0; c < b.cols; c++) y[yo + c] = y[yo + c]! + part[po + c]!;
      }
    }
    return y;
  }
}
