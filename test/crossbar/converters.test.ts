import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { errorOver, PCM_ALL_OFF, randomInputs, randomMatrix } from './fixtures.js';

const ones = (n: number) => new Float32Array(n).fill(1);

describe('DAC, ADC, bound management and output noise', () => {
  it('an ADC saturates at ±bound; without bound management the output clips', async () => {
    const emu = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, adc: { bits: null, bound: 12 } } });
    await emu.program(0, ones(256 * 4), 256, 4);
    expect(Array.from(await emu.mvm(0, ones(256), 1))).toEqual([12, 12, 12, 12]); // true value 256
  });

  it('iterative bound management re-runs with halved inputs, up to aihwkit max_bm_res with a DAC', async () => {
    // Unquantised inputs: reductions 1, 2, 4, 8, 16, 32 — at 32 the output (8) fits: exact result.
    const free = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, adc: { bits: null, bound: 12 }, boundManagement: 'iterative' } });
    await free.program(0, ones(256 * 4), 256, 4);
    expect(Array.from(await free.mvm(0, ones(256), 1))).toEqual([256, 256, 256, 256]);
    expect((await free.counters())[0]).toMatchObject({ mvms: 1, dacConversions: 6 * 256, adcConversions: 6 * 4 });
    // A 7-bit DAC stops at reduction 16 (> 0.25 / inp_res = 15.75): still saturated, 12·16 = 192.
    const dac7 = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, dac: { bits: 7 }, adc: { bits: null, bound: 12 }, boundManagement: 'iterative' } });
    await dac7.program(0, ones(256 * 4), 256, 4);
    expect(Array.from(await dac7.mvm(0, ones(256), 1))).toEqual([192, 192, 192, 192]);
    expect((await dac7.counters())[0]).toMatchObject({ dacConversions: 5 * 256, adcConversions: 5 * 4 });
  });

  it('rounds that saturate for certain are counted but skipped; marginal ones run', async () => {
    const overrides = { ...PCM_ALL_OFF, outputNoise: 0.06, dac: { bits: 7 }, adc: { bits: 8, bound: 12 }, boundManagement: 'iterative' } as const;
    // 256 ones: reductions 2, 4 and 8 give 128, 64, 32 ≫ 12 (skipped), 16 is the last (capped) round.
    const far = new CrossbarEmulator('pcm', { seed: 3, overrides });
    await far.program(0, ones(256 * 2), 256, 2);
    for (const v of await far.mvm(0, ones(256), 1)) expect(v).toBeCloseTo(192, 0);
    expect((await far.counters())[0]!.dacConversions).toBe(5 * 256);
    // 25 ones: reduction 2 gives 12.5, within noise and DAC rounding of the bound, so it really runs
    // (and saturates), then reduction 4 fits: 6.25·4 ≈ 25.
    const near = new CrossbarEmulator('pcm', { seed: 3, overrides });
    await near.program(0, ones(25 * 2), 25, 2);
    for (const v of await near.mvm(0, ones(25), 1)) expect(Math.abs(v - 25)).toBeLessThan(1);
    expect((await near.counters())[0]!.dacConversions).toBe(3 * 25);
  });

  it('a batch gives the same outputs and counts as its vectors one by one (saturating ones included)', async () => {
    const overrides = { ...PCM_ALL_OFF, dac: { bits: 7 }, adc: { bits: 8, bound: 12 }, boundManagement: 'iterative' } as const;
    const w = randomMatrix(256, 8, 71, 0.2);
    w.fill(0.2, 0, 128 * 8); // rows 0..127 all 0.2: all-one inputs saturate the ADC
    const x = Float32Array.from({ length: 3 * 256 }, (_, i) => (i < 256 || i >= 512 ? 1 : ((i * 37) % 11) / 11));
    const batched = new CrossbarEmulator('pcm', { overrides });
    await batched.program(0, w, 256, 8);
    const together = (await batched.mvm(0, x, 3)).slice();
    const single = new CrossbarEmulator('pcm', { overrides });
    await single.program(0, w, 256, 8);
    const apart: number[] = [];
    for (let b = 0; b < 3; b++) apart.push(...(await single.mvm(0, x.subarray(b * 256, (b + 1) * 256), 1)));
    expect(Array.from(together)).toEqual(apart);
    expect((await batched.counters())[0]!.dacConversions).toBe((await single.counters())[0]!.dacConversions);
    expect((await batched.counters())[0]!.dacConversions).toBeGreaterThan(3 * 256); // bound management ran
  });

  it('fewer ADC bits → larger error, fewer DAC bits → larger error (monotone over bit widths)', async () => {
    const w = randomMatrix(128, 64, 31, 0.2);
    const x = randomInputs(8, 128, 32);
    const adc = [];
    for (const bits of [4, 6, 8, 10]) adc.push(await errorOver([1], 'pcm', { ...PCM_ALL_OFF, adc: { bits, bound: 12 } }, w, 128, 64, x, 8));
    for (let i = 1; i < adc.length; i++) expect(adc[i]).toBeLessThan(adc[i - 1]!);
    const dac = [];
    for (const bits of [3, 5, 7, 9]) dac.push(await errorOver([1], 'pcm', { ...PCM_ALL_OFF, dac: { bits } }, w, 128, 64, x, 8));
    for (let i = 1; i < dac.length; i++) expect(dac[i]).toBeLessThan(dac[i - 1]!);
  });

  it('setAdcBits changes the resolution of programmed tiles at run time: same outputs as a device built with those bits', async () => {
    const w = randomMatrix(128, 64, 31, 0.2);
    const x = randomInputs(8, 128, 32);
    const live = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, adc: { bits: 8, bound: 12 } } });
    const built = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, adc: { bits: 4, bound: 12 } } });
    for (const d of [live, built]) await d.program(0, w, 128, 64);
    const at8 = Array.from(await live.mvm(0, x, 8));
    await live.setAdcBits(4);
    expect(live.info().adcBits).toBe(4);
    const at4 = Array.from(await live.mvm(0, x, 8));
    expect(at4).toEqual(Array.from(await built.mvm(0, x, 8)));
    expect(at4).not.toEqual(at8);
    await expect(live.setAdcBits(1.5)).rejects.toThrow(/whole number of bits/);
    await expect(new CrossbarEmulator('ideal').setAdcBits(6)).rejects.toThrow(/no quantising ADC/);
  });

  it('ADC outputs sit on the converter grid', async () => {
    const emu = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, adc: { bits: 4, bound: 7 } } });
    await emu.program(0, ones(16 * 2), 16, 2);
    const x = Float32Array.from({ length: 16 }, (_, i) => (i < 5 ? 1 : 0)); // normalised output 5
    expect(Array.from(await emu.mvm(0, x, 1))).toEqual([5, 5]); // step 7/7 = 1: representable
    const x2 = Float32Array.from({ length: 16 }, (_, i) => (i < 5 ? 1 : i === 5 ? 0.4 : 0)); // 5.4 → 5
    expect(Array.from(await emu.mvm(0, x2, 1))).toEqual([5, 5]);
  });

  it('output noise makes repeated reads differ with the configured spread', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 5, overrides: { ...PCM_ALL_OFF, outputNoise: 0.06 } });
    const w = new Float32Array(64 * 256).fill(0.25);
    w[0] = 1; // column scale 1 in column 0
    await emu.program(0, w, 64, 256);
    const x = new Float32Array(64).fill(0.1);
    x[0] = 1; // |x|max = 1: outputs are in normalised units
    const a = (await emu.mvm(0, x, 1)).slice();
    const b = (await emu.mvm(0, x, 1)).slice();
    let s = 0;
    for (let c = 1; c < 256; c++) s += (a[c]! - b[c]!) ** 2;
    const sigma = Math.sqrt(s / 255 / 2) / 0.25; // column scale 0.25 for c ≥ 1
    expect(sigma).toBeGreaterThan(0.06 * 0.8);
    expect(sigma).toBeLessThan(0.06 * 1.2);
  });

  it('flash-style weight quantisation: fewer weight bits → larger error', async () => {
    const w = randomMatrix(96, 32, 41, 0.2);
    const x = randomInputs(4, 96, 42);
    const e3 = await errorOver([1], 'pcm', { ...PCM_ALL_OFF, weightBits: 3 }, w, 96, 32, x, 4);
    const e8 = await errorOver([1], 'pcm', { ...PCM_ALL_OFF, weightBits: 8 }, w, 96, 32, x, 4);
    expect(e8).toBeGreaterThan(0);
    expect(e3).toBeGreaterThan(5 * e8);
  });
});
