/** Hands out the tiles of one accelerator; refuses a matrix that does not fit, saying why. */
import type { AcceleratorInfo } from '../accelerator.js';

export class TileAllocationError extends Error {
  override readonly name = 'TileAllocationError';
}

export class TileAllocator {
  readonly #inUse = new Set<number>();
  /** Lowest id not handed out yet; released ids go to #free. */
  #next = 0;
  readonly #free: number[] = [];

  constructor(readonly info: AcceleratorInfo) {}

  /** Tiles not in use. */
  get available(): number {
    return this.info.tiles - this.#inUse.size;
  }

  get used(): number {
    return this.#inUse.size;
  }

  /** Tiles a rows × cols matrix needs on this device. */
  tilesFor(rows: number, cols: number): number {
    return Math.ceil(rows / this.info.tileRows) * Math.ceil(cols / this.info.tileCols);
  }

  /** `count` tile ids, all or none; `what` names the layer in the error. */
  allocate(count: number, what = 'layer'): number[] {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`tile count must be a whole number ≥ 0, got ${count}`);
    if (count > this.available) {
      const { profile, tileRows, tileCols, tiles } = this.info;
      throw new TileAllocationError(`${what} needs ${count} tiles but the device has ${this.available} free (profile ${profile}, tiles ${tileRows}×${tileCols}, ${tiles} in total)`);
    }
    const ids: number[] = [];
    while (ids.length < count) {
      const id = this.#free.pop() ?? this.#next++;
      this.#inUse.add(id);
      ids.push(id);
    }
    return ids;
  }

  /** Returns tiles; releasing a tile that is not allocated is a bug and throws. */
  release(ids: readonly number[]): void {
    const unique = new Set(ids);
    for (const id of unique) if (!this.#inUse.has(id)) throw new Error(`tile ${id} is not allocated`);
    for (const id of unique) {
      this.#inUse.delete(id);
      this.#free.push(id);
    }
  }
}
