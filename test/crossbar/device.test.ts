import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { meanAbs, PCM_ALL_OFF, randomInputs, randomMatrix, reference, relError } from './fixtures.js';

const HOUR = 3600;
const DAY = 86_400;
const YEAR = 365 * DAY;
const W = randomMatrix(128, 64, 51, 0.2);
const X = randomInputs(4, 128, 52);

async function programmed(overrides: object, options: { seed?: number; calibrateOnSetAge?: boolean } = {}): Promise<CrossbarEmulator> {
  const emu = new CrossbarEmulator('pcm', { seed: options.seed ?? 1, overrides, ...(options.calibrateOnSetAge === undefined ? {} : { calibrateOnSetAge: options.calibrateOnSetAge }) });
  await emu.program(0, W, 128, 64);
  return emu;
}

describe('device state over time, temperature and faults', () => {
  it('without GDC the output magnitude falls monotonically with age', async () => {
    const emu = await programmed({ ...PCM_ALL_OFF, drift: { enabled: true } });
    const m: number[] = [];
    for (const age of [0, HOUR, DAY, YEAR]) {
      await emu.setAge(age);
      m.push(meanAbs(await emu.mvm(0, X, 4)));
    }
    for (let i = 1; i < m.length; i++) expect(m[i]).toBeLessThan(m[i - 1]!);
    expect(m[3]! / m[0]!).toBeLessThan(0.6); // ν ≈ 0.05–0.1 over ln(1 y / 20 s) ≈ 14
  });

  it('global and per-column GDC restore the magnitude at every age, with all pcm noise on', async () => {
    for (const gdc of ['global', 'per-column'] as const) {
      const emu = await programmed({ gdc });
      const young = meanAbs(await emu.mvm(0, X, 4));
      for (const age of [DAY, YEAR]) {
        await emu.setAge(age);
        expect(Math.abs(meanAbs(await emu.mvm(0, X, 4)) / young - 1), `${gdc} at ${age} s`).toBeLessThan(0.08);
        expect(emu.gdcFactors(0)[0]).toBeGreaterThan(1.2);
      }
    }
  });

  it('with calibrateOnSetAge off, compensation waits for calibrate()', async () => {
    const emu = await programmed({ ...PCM_ALL_OFF, drift: { enabled: true }, gdc: 'global' }, { calibrateOnSetAge: false });
    const young = meanAbs(await emu.mvm(0, X, 4));
    await emu.setAge(YEAR);
    expect(meanAbs(await emu.mvm(0, X, 4)) / young).toBeLessThan(0.6);
    expect(Array.from(emu.gdcFactors(0).subarray(0, 3))).toEqual([1, 1, 1]);
    await emu.calibrate(0);
    expect(Math.abs(meanAbs(await emu.mvm(0, X, 4)) / young - 1)).toBeLessThan(0.05);
  });

  it('a tile reprogrammed later is younger than the device clock', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 1, overrides: { ...PCM_ALL_OFF, drift: { enabled: true } } });
    await emu.program(0, W, 128, 64);
    await emu.program(1, W, 128, 64);
    const fresh = meanAbs(await emu.mvm(1, X, 4));
    await emu.setAge(YEAR);
    expect(emu.age).toBe(YEAR);
    await emu.program(1, W, 128, 64); // refresh tile 1 a year in
    const refreshed = meanAbs(await emu.mvm(1, X, 4));
    const aged = meanAbs(await emu.mvm(0, X, 4));
    expect(Math.abs(refreshed / fresh - 1)).toBeLessThan(0.02); // new drift exponents, same age 0
    expect(aged / fresh).toBeLessThan(0.6);
    await emu.setAge(YEAR + HOUR); // tile 1 is an hour old now
    expect(meanAbs(await emu.mvm(1, X, 4)) / fresh).toBeGreaterThan(meanAbs(await emu.mvm(0, X, 4)) / fresh);
  });

  it('reads conductances: |w|max per column maps to g_max on G+ or G−; drift lowers them', async () => {
    const emu = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, drift: { enabled: true } } });
    await emu.program(0, Float32Array.from([1, -2, 0.5, 1]), 2, 2);
    const g = await emu.readConductances(0);
    expect(g.rows).toBe(2);
    expect(Array.from(g.gPlus)).toEqual([25, 0, 12.5, 12.5]);
    expect(Array.from(g.gMinus)).toEqual([0, 25, 0, 0]);
    await emu.setAge(DAY);
    const later = await emu.readConductances(0);
    expect(later.gPlus[0]).toBeLessThan(25 * 0.8);
    expect(later.gPlus[0]).toBeGreaterThan(25 * 0.3);
  });

  it('per-tile weight scaling maps the block |w|max to g_max', async () => {
    const emu = new CrossbarEmulator('pcm', { overrides: { ...PCM_ALL_OFF, weightScale: 'per-tile' } });
    await emu.program(0, Float32Array.from([1, -2, 0.5, 1]), 2, 2);
    const g = await emu.readConductances(0);
    expect(Array.from(g.gPlus)).toEqual([12.5, 0, 6.25, 12.5]);
    const y = await emu.mvm(0, Float32Array.from([1, 1]), 1);
    expect(Array.from(y)).toEqual([1.5, -1]);
  });

  it('stuck devices: the fractions and the conductances (g_max or 0) are as configured', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 9, overrides: { ...PCM_ALL_OFF, faults: { stuckOn: 0.1, stuckOff: 0.2 } } });
    const w = new Float32Array(256 * 256).fill(0.5);
    await emu.program(0, w, 256, 256);
    const { gPlus, gMinus } = await emu.readConductances(0);
    let on = 0;
    let offPlus = 0;
    for (let i = 0; i < gPlus.length; i++) {
      if (gMinus[i] === 25) on++; // G− targets 0: g_max there can only be a stuck-on device
      if (gPlus[i] === 0) offPlus++; // G+ targets g_max: 0 there can only be stuck off
    }
    expect(on / gPlus.length).toBeCloseTo(0.1, 2);
    expect(offPlus / gPlus.length).toBeCloseTo(0.2, 2);
    const errors = [];
    for (const f of [0.01, 0.05, 0.2]) {
      const e = new CrossbarEmulator('pcm', { seed: 9, overrides: { ...PCM_ALL_OFF, faults: { stuckOn: f / 2, stuckOff: f / 2 } } });
      await e.program(0, W, 128, 64);
      errors.push(relError(await e.mvm(0, X, 4), reference(X, W, 4, 128, 64)));
    }
    expect(errors[0]).toBeLessThan(errors[1]!);
    expect(errors[1]).toBeLessThan(errors[2]!);
  });

  it('temperature scales outputs by 1 + α·(T − T_ref) until recalibrated; bad temperatures are refused', async () => {
    const emu = await programmed({ ...PCM_ALL_OFF, temperature: { coefficient: 0.003 }, gdc: 'global' });
    expect(await emu.temperature()).toBe(300);
    const cool = meanAbs(await emu.mvm(0, X, 4));
    emu.setTemperature(330);
    expect(await emu.temperature()).toBe(330);
    expect(meanAbs(await emu.mvm(0, X, 4)) / cool).toBeCloseTo(1.09, 4);
    await emu.calibrate(0); // GDC absorbs a global conductance change
    expect(meanAbs(await emu.mvm(0, X, 4)) / cool).toBeCloseTo(1, 4);
    expect(() => emu.setTemperature(-5)).toThrow(/positive number of kelvin/);
    await expect(new CrossbarEmulator('pcm', { overrides: { temperature: { initial: 318 } } }).temperature()).resolves.toBe(318);
  });

  it('programming noise: error grows with the aihwkit prog_noise_scale, averaged over devices', async () => {
    const errors = [];
    for (const scale of [0.5, 1, 2]) {
      let sum = 0;
      for (const seed of [1, 2, 3]) {
        const emu = await programmed({ ...PCM_ALL_OFF, programmingNoise: { enabled: true, scale } }, { seed });
        sum += relError(await emu.mvm(0, X, 4), reference(X, W, 4, 128, 64));
      }
      errors.push(sum / 3);
    }
    expect(errors[1]).toBeGreaterThan(1.5 * errors[0]!);
    expect(errors[2]).toBeGreaterThan(1.5 * errors[1]!);
  });

  it('read noise is drawn on every MVM; without any noise source repeated MVMs are identical', async () => {
    const noisy = await programmed({ ...PCM_ALL_OFF, programmingNoise: { enabled: true }, readNoise: { enabled: true } });
    const a = (await noisy.mvm(0, X, 4)).slice();
    expect(await noisy.mvm(0, X, 4)).not.toEqual(a);
    const quiet = await programmed({ ...PCM_ALL_OFF, programmingNoise: { enabled: true } });
    const b = (await quiet.mvm(0, X, 4)).slice();
    expect(await quiet.mvm(0, X, 4)).toEqual(b);
  });
});
