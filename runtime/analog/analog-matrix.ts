/**
 * A weight matrix of any size on crossbar tiles: W (K inputs × N outputs, row-major) is cut into
 * ceil(K/tileRows) × ceil(N/tileCols) blocks, one tile each. Partial sums over row blocks are added
 * digitally and column blocks concatenated — what analog chips do when a layer spans several cores.
 * Bias is not applied here (the caller adds it digitally); optional per-column scales are (a QDQ
 * layer's weights are programmed as integer codes, its scales stay digital, as on an INT8 device).
 * Uses only the CrossbarDriver interface.
 */
import type { CrossbarDriver } from '../accelerator.js';
import type { TileAllocator } from './tile-allocator.js';

export interface MatrixBlock {
  tileId: number;
  row0: number;
  rows: number;
  col0: number;
  cols: number;
}

interface RowBand {
  row0: number;
  rows: number;
  blocks: MatrixBlock[];
  /** This band's slice of every input vector, contiguous (batch × rows); grown on demand. */
  input: Float32Array;
}

export class AnalogMatrix {
  /** Row-major over the blocks: row band by row band, column blocks left to right. */
  readonly blocks: readonly MatrixBlock[];
  readonly #bands: RowBand[] = [];
  #y = new Float32Array(0);
  #yView = new Float32Array(0);
  #sum = new Float64Array(0);
  #scaled = new Float32Array(0);

  /** Allocates the tiles (all or none); `what` names the matrix in errors; outputs are multiplied by `columnScales` when given. */
  constructor(
    private readonly driver: CrossbarDriver,
    allocator: TileAllocator,
    private readonly weights: Float32Array,
    readonly k: number,
    readonly n: number,
    what = 'matrix',
    readonly columnScales?: Float32Array,
  ) {
    if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || n < 1) throw new RangeError(`${what}: matrix dimensions must be whole numbers ≥ 1, got ${k}×${n}`);
    if (weights.length !== k * n) throw new RangeError(`${what}: a ${k}×${n} matrix needs ${k * n} weights, got ${weights.length}`);
    if (columnScales && columnScales.length !== n) throw new RangeError(`${what}: ${n} columns need ${n} column scales, got ${columnScales.length}`);
    const { tileRows, tileCols } = allocator.info;
    const ids = allocator.allocate(allocator.tilesFor(k, n), `${what} (${k}×${n})`);
    const blocks: MatrixBlock[] = [];
    let i = 0;
    for (let row0 = 0; row0 < k; row0 += tileRows) {
      const band: RowBand = { row0, rows: Math.min(tileRows, k - row0), blocks: [], input: new Float32Array(0) };
      for (let col0 = 0; col0 < n; col0 += tileCols) {
        const b = { tileId: ids[i++]!, row0, rows: band.rows, col0, cols: Math.min(tileCols, n - col0) };
        band.blocks.push(b);
        blocks.push(b);
      }
      this.#bands.push(band);
    }
    this.blocks = blocks;
  }

  get tiles(): number[] {
    return this.blocks.map((b) => b.tileId);
  }

  /** Programs every block (again, e.g. to refresh drifted devices). */
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

  /** Refreshes drift compensation on every tile. */
  async calibrate(): Promise<void> {
    await Promise.all(this.blocks.map((b) => this.driver.calibrate(b.tileId)));
  }

  /** y = x·W (times the column scales) for `batch` rows of x (batch × K); returns a batch × N buffer that the next run may reuse. */
  async run(x: Float32Array, batch: number): Promise<Float32Array> {
    const y = await this.#product(x, batch);
    const scales = this.columnScales;
    if (!scales) return y;
    const n = this.n;
    if (this.#scaled.length !== batch * n) this.#scaled = new Float32Array(batch * n);
    const out = this.#scaled;
    for (let s = 0, i = 0; s < batch; s++) for (let c = 0; c < n; c++, i++) out[i] = y[i]! * scales[c]!;
    return out;
  }

  /** Not async: one tile's promise goes back as it is, several are combined in one `then`. */
  #product(x: Float32Array, batch: number): Promise<Float32Array> {
    const { k, n } = this;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number ≥ 1, got ${batch}`);
    if (x.length < batch * k) throw new RangeError(`${batch} input vectors of ${k} need ${batch * k} values, got ${x.length}`);
    // One tile holds the whole matrix: its output already is y (the driver's buffer, valid until the next run).
    if (this.blocks.length === 1) return this.driver.mvm(this.blocks[0]!.tileId, x.length === batch * k ? x : x.subarray(0, batch * k), batch);
    const size = batch * n;
    if (this.#y.length < size) this.#y = new Float32Array(size);
    if (this.#yView.length !== size) this.#yView = this.#y.subarray(0, size);
    const bands = this.#bands;
    const single = bands.length === 1;
    // Every tile at once: a remote device overlaps them; inputs stay untouched until all resolve.
    const calls: Promise<Float32Array>[] = [];
    for (const band of bands) {
      // One vector's slice of a band is contiguous already; a batch's is gathered.
      const input = single ? (x.length === batch * k ? x : x.subarray(0, batch * k)) : batch === 1 ? x.subarray(band.row0, band.row0 + band.rows) : gather(x, k, batch, band);
      for (const b of band.blocks) calls.push(this.driver.mvm(b.tileId, input, batch));
    }
    return Promise.all(calls).then((parts) => this.#combine(parts, batch));
  }

  /** The tiles' outputs (in block order) as y: column blocks side by side, row bands' partial sums added. */
  #combine(parts: Float32Array[], batch: number): Float32Array {
    const n = this.n;
    const size = batch * n;
    const bands = this.#bands;
    const single = bands.length === 1;
    const y = this.#yView;
    if (single) {
      for (let i = 0; i < parts.length; i++) scatter(parts[i]!, this.blocks[i]!, batch, n, y);
      return y;
    }
    // Partial sums of the row bands are added in float64 and in block order: results never depend on timing.
    if (bands[0]!.blocks.length === 1) {
      // One block per band (N fits a tile): every part is batch × N, summed element by element.
      for (let i = 0; i < size; i++) {
        let s = 0;
        for (let j = 0; j < parts.length; j++) s += parts[j]![i]!;
        y[i] = s;
      }
      return y;
    }
    if (this.#sum.length < size) this.#sum = new Float64Array(size);
    const sum = this.#sum;
    sum.fill(0, 0, size);
    for (let i = 0; i < parts.length; i++) accumulate(parts[i]!, this.blocks[i]!, batch, n, sum);
    for (let i = 0; i < size; i++) y[i] = sum[i]!;
    return y;
  }
}

/** The band's slice of every input vector, contiguous in its reused buffer. */
function gather(x: Float32Array, k: number, batch: number, band: RowBand): Float32Array {
  const { rows, row0 } = band;
  if (band.input.length < batch * rows) band.input = new Float32Array(batch * rows);
  const input = band.input;
  for (let s = 0; s < batch; s++) input.set(x.subarray(s * k + row0, s * k + row0 + rows), s * rows);
  return input.length === batch * rows ? input : input.subarray(0, batch * rows);
}

function scatter(part: Float32Array, b: MatrixBlock, batch: number, n: number, y: Float32Array): void {
  for (let s = 0; s < batch; s++) {
    const yo = s * n + b.col0;
    const po = s * b.cols;
    for (let c = 0; c < b.cols; c++) y[yo + c] = part[po + c]!;
  }
}

function accumulate(part: Float32Array, b: MatrixBlock, batch: number, n: number, sum: Float64Array): void {
  for (let s = 0; s < batch; s++) {
    const yo = s * n + b.col0;
    const po = s * b.cols;
    for (let c = 0; c < b.cols; c++) sum[yo + c] = sum[yo + c]! + part[po + c]!;
  }
}
