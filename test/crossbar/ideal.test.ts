import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { AnalogMatrix } from '../../runtime/analog/analog-matrix.js';
import { TileAllocator } from '../../runtime/analog/tile-allocator.js';
import { maxRelError, oneTile, PCM_ALL_OFF, randomInputs, randomMatrix, reference, splitError } from './fixtures.js';

describe('digital-exact crossbar (ideal profile)', () => {
  it('computes x·W of a full 256×256 tile to float32 rounding', async () => {
    const w = randomMatrix(256, 256, 1);
    const x = randomInputs(5, 256, 2);
    const { y } = await oneTile('ideal', w, 256, 256, x, 5);
    expect(y.length).toBe(5 * 256);
    // float32 accumulation (as onnxruntime's) rounds at the scale of the partial sums
    expect(splitError(y, reference(x, w, 5, 256, 256))).toBeLessThanOrEqual(1e-6);
  });

  it('is exact for odd block shapes and odd batches (kernel remainders)', async () => {
    const w = randomMatrix(37, 11, 3);
    const x = randomInputs(3, 37, 4);
    const { em, y } = await oneTile('ideal', w, 37, 11, x, 3);
    expect(maxRelError(y, reference(x, w, 3, 37, 11))).toBeLessThanOrEqual(1e-5);
    // The batch kernel and the one-vector kernel add in the same order: identical sums.
    const apart: number[] = [];
    for (let b = 0; b < 3; b++) apart.push(...(await em.mvm(0, x.subarray(b * 37, (b + 1) * 37), 1)));
    expect(Array.from(y)).toEqual(apart);
  });

  it('is exact with signed inputs and all-zero rows', async () => {
    const w = randomMatrix(64, 32, 5);
    const x = Float32Array.from({ length: 2 * 64 }, (_, i) => (i % 9 < 4 ? 0 : Math.sin(i) * 3));
    const { y } = await oneTile('ideal', w, 64, 32, x, 2);
    expect(splitError(y, reference(x, w, 2, 64, 32))).toBeLessThanOrEqual(1e-6);
  });

  it('the pcm profile with every non-ideality switched off is exact too', async () => {
    const w = randomMatrix(100, 60, 6);
    const x = randomInputs(4, 100, 7);
    const { y } = await oneTile('pcm', w, 100, 60, x, 4, { overrides: PCM_ALL_OFF });
    expect(maxRelError(y, reference(x, w, 4, 100, 60))).toBeLessThanOrEqual(1e-5);
  });

  it('splits a 600×300 matrix over 3×2 tiles of 256×256 and stays exact', async () => {
    const em = new CrossbarEmulator('ideal');
    const allocator = new TileAllocator(em.info());
    const w = randomMatrix(600, 300, 8);
    const m = new AnalogMatrix(em, allocator, w, 600, 300, 'fc');
    expect(m.tiles).toHaveLength(6);
    expect(m.blocks.map((b) => [b.row0, b.rows, b.col0, b.cols])).toEqual([
      [0, 256, 0, 256], [0, 256, 256, 44],
      [256, 256, 0, 256], [256, 256, 256, 44],
      [512, 88, 0, 256], [512, 88, 256, 44],
    ]);
    await m.program();
    for (const batch of [1, 4]) {
      const x = randomInputs(batch, 600, 9 + batch);
      const y = await m.run(x, batch);
      expect(y.length).toBe(batch * 300);
      expect(splitError(y, reference(x, w, batch, 600, 300))).toBeLessThanOrEqual(1e-6);
    }
  });

  it('counts MVMs, MACs, conversions and programmed cells per tile', async () => {
    const em = new CrossbarEmulator('ideal');
    await em.program(3, randomMatrix(100, 50, 1), 100, 50);
    await em.program(1, randomMatrix(20, 10, 2), 20, 10);
    await em.mvm(3, randomInputs(3, 100, 3), 3);
    await em.mvm(3, randomInputs(2, 100, 4), 2);
    await em.mvm(1, randomInputs(1, 20, 5), 1);
    expect(await em.counters()).toEqual([
      { tileId: 1, mvms: 1, macs: 200, dacConversions: 20, adcConversions: 10, cellsProgrammed: 400 },
      { tileId: 3, mvms: 5, macs: 25_000, dacConversions: 500, adcConversions: 250, cellsProgrammed: 10_000 },
    ]);
    await em.program(1, randomMatrix(20, 10, 2), 20, 10);
    expect((await em.counters())[0]!.cellsProgrammed).toBe(800);
  });
});
