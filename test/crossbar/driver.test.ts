import { describe, expect, it } from 'vitest';
import { AcceleratorFault, CrossbarEmulator } from '../../drivers/crossbar/index.js';
import type { CrossbarDriver } from '../../runtime/accelerator.js';
import { PCM_ALL_OFF, randomInputs, randomMatrix } from './fixtures.js';

const W = randomMatrix(100, 40, 61, 0.2);
const X = randomInputs(3, 100, 62);

async function outputs(options: ConstructorParameters<typeof CrossbarEmulator>[1], profile = 'pcm', age = 3600): Promise<Float32Array> {
  const emu = new CrossbarEmulator(profile, options);
  await emu.program(2, W, 100, 40);
  await emu.program(5, W.subarray(0, 50 * 40), 50, 40);
  await emu.program(7, W.subarray(0, 37 * 39), 37, 39); // odd rows and columns: the kernels' remainder paths
  await emu.setAge(age);
  const y = (await emu.mvm(2, X, 3)).slice();
  const z = (await emu.mvm(5, X.subarray(0, 2 * 50), 2)).slice();
  return Float32Array.from([...y, ...z, ...(await emu.mvm(7, X.subarray(0, 3 * 37), 3))]);
}

describe('CrossbarDriver behaviour of the emulator', () => {
  it('same seed → bit-identical outputs; another seed → another device', async () => {
    const a = await outputs({ seed: 7 });
    expect(await outputs({ seed: 7 })).toEqual(a);
    const b = await outputs({ seed: 8 });
    expect(b).not.toEqual(a);
    let differing = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
    expect(differing).toBeGreaterThan(0.9 * a.length);
  });

  it('a device does not depend on the order its tiles are programmed in', async () => {
    const one = new CrossbarEmulator('pcm', { seed: 4 });
    await one.program(0, W, 100, 40);
    await one.program(1, W, 100, 40);
    const two = new CrossbarEmulator('pcm', { seed: 4 });
    await two.program(1, W, 100, 40);
    await two.program(0, W, 100, 40);
    expect((await one.readConductances(0)).gPlus).toEqual((await two.readConductances(0)).gPlus);
    expect((await one.mvm(1, X, 3)).slice()).toEqual((await two.mvm(1, X, 3)).slice());
  });

  it('the WebAssembly SIMD and plain JS kernels agree bit for bit', async () => {
    const simd = await outputs({ seed: 1 }, 'ideal');
    const js = await outputs({ seed: 1, simd: false }, 'ideal');
    expect(js).toEqual(simd);
    const noisySimd = await outputs({ seed: 1 });
    const noisyJs = await outputs({ seed: 1, simd: false });
    expect(noisyJs).toEqual(noisySimd);
    // Converters without noise (DAC, ADC, bound management, one vector and a batch): bit for bit too.
    const overrides = { ...PCM_ALL_OFF, dac: { bits: 5 }, adc: { bits: 6, bound: 4 }, boundManagement: 'iterative' } as const;
    const converted = await outputs({ seed: 1, overrides });
    expect(await outputs({ seed: 1, overrides, simd: false })).toEqual(converted);
    expect(new Set(converted).size).toBeGreaterThan(5);
    expect(new CrossbarEmulator('ideal', { simd: false }).simd).toBe(false);
  });

  it('describes itself and validates every call', async () => {
    const emu: CrossbarDriver = new CrossbarEmulator('pcm');
    expect(emu.info()).toEqual({
      driver: 'crossbar-emulator', profile: 'pcm', tileRows: 256, tileCols: 256, tiles: 64, dacBits: 7, adcBits: 8,
      periphery: { BatchNormalization: 230, Relu: 30, Sigmoid: 1250, Tanh: 1250, MaxPool: 30, AveragePool: 100 },
    });
    await expect(emu.program(64, W, 100, 40)).rejects.toThrow(/tile 64 does not exist \(the device has tiles 0…63\)/);
    await expect(emu.program(0, W, 100, 41)).rejects.toThrow(/weights hold 4000 values, a 100×41 block needs 4100/);
    await expect(emu.program(0, new Float32Array(257 * 3), 257, 3)).rejects.toThrow(/257×3 block does not fit a 256×256 tile/);
    await expect(emu.program(0, Float32Array.from([1, NaN]), 1, 2)).rejects.toThrow(/weight 1 is NaN/);
    await expect(emu.mvm(0, X, 1)).rejects.toThrow(/tile 0 is not programmed/);
    await emu.program(0, W, 100, 40);
    await expect(emu.mvm(0, X, 4)).rejects.toThrow(/programmed with 100 rows: 4 input vector\(s\) need 400 values, got 300/);
    // Exactly the programmed rows per vector: neither truncated nor read short (regression: a longer x was used in part).
    await expect(emu.mvm(0, X, 2)).rejects.toThrow(/programmed with 100 rows: 2 input vector\(s\) need 200 values, got 300/);
    await expect(emu.mvm(0, X.subarray(0, 99), 1)).rejects.toThrow(/need 100 values, got 99/);
    await expect(emu.mvm(0, X, 1.5)).rejects.toThrow(/batch must be a whole number/);
    await expect(emu.setAge(-1)).rejects.toThrow(/finite number of seconds/);
    expect(await emu.mvm(0, X.subarray(0, 0), 0)).toHaveLength(0);
    await expect(emu.readConductances(3)).rejects.toThrow(/tile 3 is not programmed/);
    expect(() => new CrossbarEmulator('pcm', { seed: 1.5 })).toThrow(/seed must be an integer/);
  });

  it('zero input gives zero output; NaN input gives NaN, not a silent number', async () => {
    for (const profile of ['ideal', 'pcm']) {
      const emu = new CrossbarEmulator(profile);
      await emu.program(0, W, 100, 40);
      expect(Array.from(await emu.mvm(0, new Float32Array(100), 1)).every((v) => v === 0)).toBe(true);
      const x = X.slice(0, 100);
      x[7] = NaN;
      expect(Array.from(await emu.mvm(0, x, 1)).some(Number.isNaN)).toBe(true);
      // In a batch: each vector on its own (a finite one, an all-zero one, one holding a NaN).
      const batch = new Float32Array(300);
      batch.set(X.subarray(0, 100));
      batch.set(x, 200);
      const y = await emu.mvm(0, batch, 3);
      expect(Array.from(y.subarray(0, 40)).every(Number.isFinite)).toBe(true);
      expect(Array.from(y.subarray(40, 80)).every((v) => v === 0)).toBe(true);
      expect(Array.from(y.subarray(80, 120)).some(Number.isNaN)).toBe(true);
    }
  });

  it('reuses its output buffer per tile (callers copy what they keep)', async () => {
    const emu = new CrossbarEmulator('pcm');
    await emu.program(0, W, 100, 40);
    const first = await emu.mvm(0, X.subarray(0, 200), 2);
    const again = await emu.mvm(0, X.subarray(0, 200), 2);
    expect(again).toBe(first);
    expect(again.length).toBe(80);
  });

  it('health: ok by default; an injected fault makes every call fail until cleared; dispose is final', async () => {
    const emu = new CrossbarEmulator('pcm');
    await emu.program(0, W, 100, 40);
    expect(await emu.health()).toEqual({ state: 'ok' });
    emu.setHealth('degraded', 'ADC calibration drifting');
    expect(await emu.health()).toEqual({ state: 'degraded', detail: 'ADC calibration drifting' });
    await emu.mvm(0, X.subarray(0, 100), 1); // degraded still computes
    emu.setHealth('unhealthy', 'tile power rail down');
    await expect(emu.mvm(0, X.subarray(0, 100), 1)).rejects.toThrow(AcceleratorFault);
    await expect(emu.mvm(0, X.subarray(0, 100), 1)).rejects.toThrow(/accelerator unhealthy: tile power rail down/);
    await expect(emu.program(1, W, 100, 40)).rejects.toThrow(AcceleratorFault);
    emu.setHealth('ok');
    await emu.mvm(0, X.subarray(0, 100), 1);
    await emu.dispose();
    expect((await emu.health()).state).toBe('unhealthy');
    await expect(emu.mvm(0, X.subarray(0, 100), 1)).rejects.toThrow(/disposed/);
  });

  it('grows its memory as tiles are programmed without disturbing earlier tiles', async () => {
    const emu = new CrossbarEmulator('ideal');
    await emu.program(0, W, 100, 40);
    const before = (await emu.mvm(0, X, 3)).slice();
    for (let t = 1; t <= 40; t++) await emu.program(t, randomMatrix(256, 256, t), 256, 256); // ~10 MB
    expect((await emu.mvm(0, X, 3)).slice()).toEqual(before);
    await emu.program(0, W.subarray(0, 40 * 40), 40, 40); // reshaped tile: new region
    expect(await emu.mvm(0, X.subarray(0, 40), 1)).toHaveLength(40);
  });
});
