/** Hands out the tiles of one accelerator; refuses a matrix that does not fit with a clear reason. */
import type { AcceleratorInfo } from '../accelerator.js';

export class TileAllocationError extends Error {
  override readonly name = 'TileAllocationError';
}

export class TileAllocator {
  #next = 0;
  readonly #free: number[] = [];

  constructor(readonly info: AcceleratorInfo) {}

  get available(): number {
    return this.info.tiles - this.#next + this.#free.length;
  }

  /** Tiles a rows × cols matrix needs on this device. */
  tilesFor(rows: number, cols: number): number {
    return Math.ceil(rows / this.info.tileRows) * Math.ceil(cols / this.info.tileCols);
  }

  allocate(count: number, what: string): number[] {
    if (count > this.available) {
      const { profile, tileRows, tileCols, tiles } = this.info;
      throw new TileAllocationError(`${what} needs ${count} tiles but the device has ${this.available} free (profile ${profile}: ${tiles} tiles of ${tileRows}×${tileCols})`);
    }
    const ids: number[] = [];
    while (ids.length < count) ids.push(this.#free.pop() ?? this.#next++);
    return ids;
  }

  release(ids: readonly number[]): void {
    this.#free.push(...ids);
  }
}
