import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { AnalogMatrix } from '../../runtime/analog/analog-matrix.js';
import { TileAllocationError, TileAllocator } from '../../runtime/analog/tile-allocator.js';
import type { AcceleratorInfo } from '../../runtime/accelerator.js';
import { randomInputs, randomMatrix, reference, relError, splitError } from './fixtures.js';

const INFO: AcceleratorInfo = { driver: 'test', profile: 'pcm', tileRows: 256, tileCols: 256, tiles: 10, dacBits: 7, adcBits: 8 };

describe('TileAllocator', () => {
  it('hands out distinct tiles, all or none, and takes them back', () => {
    const a = new TileAllocator(INFO);
    expect(a.tilesFor(600, 300)).toBe(6);
    expect(a.tilesFor(256, 256)).toBe(1);
    expect(a.tilesFor(257, 1)).toBe(2);
    const first = a.allocate(6, 'fc1');
    expect(new Set(first).size).toBe(6);
    expect(a.available).toBe(4);
    expect(() => a.allocate(5, 'layer fc2 (1000×512)')).toThrow(TileAllocationError);
    expect(() => a.allocate(5, 'layer fc2 (1000×512)')).toThrow('layer fc2 (1000×512) needs 5 tiles but the device has 4 free (profile pcm, tiles 256×256, 10 in total)');
    expect(a.available).toBe(4); // a refused request takes nothing
    a.release(first.slice(0, 2));
    const again = a.allocate(6, 'fc2');
    expect(new Set([...again, ...first.slice(2)]).size).toBe(10);
    expect(a.available).toBe(0);
    expect(() => a.release([again[0]!, again[0]!, 99])).toThrow(/tile 99 is not allocated/);
    a.release([again[0]!]);
    expect(() => a.release([again[0]!])).toThrow(/is not allocated/);
  });
});

describe('AnalogMatrix', () => {
  it('refuses a matrix larger than the free tiles, naming the layer, the profile and the tiles', () => {
    const emu = new CrossbarEmulator('pcm');
    const allocator = new TileAllocator(emu.info());
    expect(() => new AnalogMatrix(emu, allocator, new Float32Array(2048 * 2304), 2048, 2304, "node 'fc9'"))
      .toThrow("node 'fc9' (2048×2304) needs 72 tiles but the device has 64 free (profile pcm, tiles 256×256, 64 in total)");
    expect(allocator.available).toBe(64);
    expect(() => new AnalogMatrix(emu, allocator, new Float32Array(10), 3, 4)).toThrow(/a 3×4 matrix needs 12 weights, got 10/);
  });

  it('is exact on the ideal device for uneven splits, single bands and single column blocks', async () => {
    const emu = new CrossbarEmulator('ideal');
    const allocator = new TileAllocator(emu.info());
    for (const [k, n] of [[700, 90], [100, 600], [513, 257]] as const) {
      const w = randomMatrix(k, n, k + n);
      const m = new AnalogMatrix(emu, allocator, w, k, n);
      await m.program();
      for (const batch of [1, 3]) {
        const x = randomInputs(batch, k, batch);
        expect(splitError(await m.run(x, batch), reference(x, w, batch, k, n)), `${k}×${n} batch ${batch}`).toBeLessThanOrEqual(1e-6);
      }
    }
  });

  it('multiplies each output column by its scale (QDQ codes), on one tile and split over several', async () => {
    const emu = new CrossbarEmulator('ideal');
    const allocator = new TileAllocator(emu.info());
    for (const [k, n] of [[40, 12], [513, 300]] as const) {
      const codes = Float32Array.from(randomMatrix(k, n, k), (v) => Math.round(v * 1000));
      const scales = Float32Array.from({ length: n }, (_, c) => 0.001 * (1 + c / n));
      const m = new AnalogMatrix(emu, allocator, codes, k, n, 'q', scales);
      await m.program();
      const x = randomInputs(3, k, 5);
      const ref = reference(x, codes, 3, k, n).map((v, i) => v * scales[i % n]!);
      expect(splitError(await m.run(x, 3), ref), `${k}×${n}`).toBeLessThanOrEqual(1e-6);
    }
    expect(() => new AnalogMatrix(emu, allocator, new Float32Array(12), 3, 4, 'q', new Float32Array(3))).toThrow(/q: 4 columns need 4 column scales, got 3/);
  });

  it('reuses its output buffer and validates inputs', async () => {
    const emu = new CrossbarEmulator('ideal');
    const m = new AnalogMatrix(emu, new TileAllocator(emu.info()), randomMatrix(300, 20, 1), 300, 20);
    await m.program();
    const x = randomInputs(2, 300, 2);
    const y = await m.run(x, 2);
    expect(await m.run(x, 2)).toBe(y);
    await expect(m.run(x, 3)).rejects.toThrow(/3 input vectors of 300 need 900 values, got 600/);
    await expect(m.run(x, 0)).rejects.toThrow(/batch must be a whole number ≥ 1/);
  });

  it('on the pcm device: noisy but close, and calibrate() refreshes every tile', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 2, calibrateOnSetAge: false });
    const allocator = new TileAllocator(emu.info());
    const w = randomMatrix(600, 300, 3);
    const m = new AnalogMatrix(emu, allocator, w, 600, 300, 'fc');
    await m.program();
    const x = randomInputs(4, 600, 4);
    const ref = reference(x, w, 4, 600, 300);
    expect(relError(await m.run(x, 4), ref)).toBeLessThan(0.3);
    await emu.setAge(86_400);
    for (const t of m.tiles) expect(emu.gdcFactors(t)[0]).toBe(1);
    await m.calibrate();
    for (const t of m.tiles) expect(emu.gdcFactors(t)[0]).toBeGreaterThan(1.1);
    const counters = await emu.counters();
    expect(counters.map((c) => c.tileId).sort((a, b) => a - b)).toEqual([...m.tiles].sort((a, b) => a - b));
    expect(counters.every((c) => c.mvms === 4)).toBe(true);
  });
});
