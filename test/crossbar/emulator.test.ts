import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { loadProfile, listProfiles, parseProfile, ProfileError, type DeepPartial, type DeviceProfile } from '../../drivers/crossbar/profile.js';
import { TileAllocator } from '../../runtime/analog/tile-allocator.js';
import { AnalogMatrix } from '../../runtime/analog/analog-matrix.js';
import { Random } from '../../drivers/crossbar/random.js';

const R = 128;
const C = 64;
const rng = new Random(123);
const W = Float32Array.from({ length: R * C }, () => rng.normal() * 0.2);
const X = Float32Array.from({ length: 4 * R }, () => Math.max(0, rng.normal())); // ReLU-like activations, batch 4

function reference(w: Float32Array, x: Float32Array, rows: number, cols: number, batch: number): Float64Array {
  const y = new Float64Array(batch * cols);
  for (let b = 0; b < batch; b++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[b * cols + c] = y[b * cols + c]! + x[b * rows + r]! * w[r * cols + c]!;
  return y;
}
const REF = reference(W, X, R, C, 4);

/** RMS error relative to the RMS of the exact product. */
function relError(y: Float32Array, ref: Float64Array = REF): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < ref.length; i++) { e += (y[i]! - ref[i]!) ** 2; s += ref[i]! ** 2; }
  return Math.sqrt(e / s);
}
const meanAbs = (y: ArrayLike<number>): number => Array.from(y).reduce((a, b) => a + Math.abs(b), 0) / y.length;

/** pcm with every non-ideality off, then the given ones switched back on. */
function quiet(overrides: DeepPartial<DeviceProfile> = {}): DeepPartial<DeviceProfile> {
  const off: DeepPartial<DeviceProfile> = {
    programmingNoise: { enabled: false }, drift: { enabled: false }, readNoise: { enabled: false }, outputNoise: 0,
    dac: { bits: null }, adc: { bits: null, bound: null }, gdc: 'off', temperature: { coefficient: 0 },
  };
  return deepMerge(off, overrides);
}
function deepMerge(a: any, b: any): any {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(b)) return b ?? a;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = deepMerge(out[k], v);
  return out;
}

async function run(overrides: DeepPartial<DeviceProfile>, seed = 1, age?: number): Promise<Float32Array> {
  const emu = new CrossbarEmulator('pcm', { seed, overrides });
  await emu.program(0, W, R, C);
  if (age !== undefined) await emu.setAge(age);
  return (await emu.mvm(0, X, 4)).slice();
}

describe('crossbar emulator', () => {
  it('ideal profile is digital-exact', async () => {
    const emu = new CrossbarEmulator('ideal');
    await emu.program(3, W, R, C);
    const y = await emu.mvm(3, X, 4);
    for (let i = 0; i < REF.length; i++) expect(Math.abs(y[i]! - REF[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(REF[i]!)));
  });

  it('splits a matrix larger than a tile and sums partial results exactly', async () => {
    const k = 600;
    const n = 300;
    const w = Float32Array.from({ length: k * n }, () => rng.normal());
    const x = Float32Array.from({ length: 2 * k }, () => rng.normal());
    const emu = new CrossbarEmulator('ideal');
    const allocator = new TileAllocator(emu.info());
    const m = new AnalogMatrix(emu, allocator, w, k, n);
    expect(m.tiles.length).toBe(3 * 2);
    await m.program();
    const y = await m.run(x, 2);
    const ref = reference(w, x, k, n, 2);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i]! - ref[i]!)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(ref[i]!)));
  });

  it('fewer ADC bits give a larger error', async () => {
    const e6 = relError(await run(quiet({ adc: { bits: 6, bound: 12 } })));
    const e10 = relError(await run(quiet({ adc: { bits: 10, bound: 12 } })));
    expect(e6).toBeGreaterThan(2 * e10);
  });

  it('fewer DAC bits give a larger error', async () => {
    const e3 = relError(await run(quiet({ dac: { bits: 3 } })));
    const e8 = relError(await run(quiet({ dac: { bits: 8 } })));
    expect(e3).toBeGreaterThan(4 * e8);
  });

  it('programming noise error grows with its scale, and the full pcm profile is noisy but close', async () => {
    const c = loadProfile('pcm').programmingNoise.c;
    const e1 = relError(await run(quiet({ programmingNoise: { enabled: true, c } })));
    const e3 = relError(await run(quiet({ programmingNoise: { enabled: true, c: [c[0] * 3, c[1] * 3, c[2] * 3] } })));
    expect(e1).toBeGreaterThan(0.005);
    expect(e3).toBeGreaterThan(2 * e1);
    const full = relError(await run({}));
    expect(full).toBeGreaterThan(e1);
    expect(full).toBeLessThan(0.5);
  });

  it('drift shrinks outputs over time without GDC; GDC restores the magnitude', async () => {
    const young = meanAbs(await run(quiet({ drift: { enabled: true } }), 1, 0));
    const oldNoGdc = meanAbs(await run(quiet({ drift: { enabled: true } }), 1, 365 * 86400));
    expect(oldNoGdc / young).toBeLessThan(0.6);
    const emu = new CrossbarEmulator('pcm', { seed: 1, overrides: quiet({ drift: { enabled: true }, gdc: 'global' }) });
    await emu.program(0, W, R, C);
    await emu.setAge(365 * 86400);
    await emu.calibrate(0);
    const oldGdc = meanAbs(await emu.mvm(0, X, 4));
    expect(Math.abs(oldGdc / young - 1)).toBeLessThan(0.05);
  });

  it('stuck-at faults: error grows with the fault fraction', async () => {
    const errors = [];
    for (const f of [0, 0.01, 0.1]) errors.push(relError(await run(quiet({ faults: { stuckOn: f / 2, stuckOff: f / 2 } }))));
    expect(errors[0]).toBeLessThan(1e-5);
    expect(errors[1]).toBeGreaterThan(errors[0]!);
    expect(errors[2]).toBeGreaterThan(2 * errors[1]!);
  });

  it('read noise: two reads of the same input differ; accumulated 1/f noise grows with age', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 1, overrides: quiet({ outputNoise: 0.06 }) });
    await emu.program(0, W, R, C);
    const a = (await emu.mvm(0, X, 4)).slice();
    const b = (await emu.mvm(0, X, 4)).slice();
    expect(a).not.toEqual(b);
    const early = relError(await run(quiet({ readNoise: { enabled: true } }), 1, 1));
    const late = relError(await run(quiet({ readNoise: { enabled: true } }), 1, 365 * 86400));
    expect(late).toBeGreaterThan(early);
  });

  it('temperature changes conductances by the profile coefficient', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 1, overrides: quiet({ temperature: { coefficient: 0.003 } }) });
    await emu.program(0, W, R, C);
    const cool = meanAbs(await emu.mvm(0, X, 4));
    emu.setTemperature(340);
    expect(await emu.temperature()).toBe(340);
    const hot = meanAbs(await emu.mvm(0, X, 4));
    expect(hot / cool).toBeCloseTo(1 + 0.003 * 40, 3);
  });

  it('IR drop lowers output magnitude, more with larger inputs and arrays', async () => {
    const withIr = (bigger: number, rows: number) => run(quiet({ irDrop: { enabled: true, wireResistance: 0.15 * bigger } }), 1).then((y) => meanAbs(y));
    const exact = meanAbs(await run(quiet()));
    const mild = await withIr(1, R);
    const strong = await withIr(10, R);
    expect(mild).toBeLessThan(exact);
    expect(strong).toBeLessThan(mild);
    // A longer column (more rows) carries more current over more segments.
    const big = new CrossbarEmulator('pcm', { seed: 1, overrides: quiet({ irDrop: { enabled: true, wireResistance: 0.15 } }) });
    const small = new CrossbarEmulator('pcm', { seed: 1, overrides: quiet({ irDrop: { enabled: true, wireResistance: 0.15 } }) });
    const ones = (n: number) => new Float32Array(n).fill(1);
    const wBig = new Float32Array(256 * 4).fill(0.5);
    const wSmall = new Float32Array(32 * 4).fill(0.5);
    await big.program(0, wBig, 256, 4);
    await small.program(0, wSmall, 32, 4);
    const lossBig = 1 - (await big.mvm(0, ones(256), 1))[0]! / (256 * 0.5);
    const lossSmall = 1 - (await small.mvm(0, ones(32), 1))[0]! / (32 * 0.5);
    expect(lossBig).toBeGreaterThan(4 * lossSmall);
  });

  it('same seed → same device; another seed → another device', async () => {
    expect(await run({}, 7, 3600)).toEqual(await run({}, 7, 3600));
    expect(await run({}, 7, 3600)).not.toEqual(await run({}, 8, 3600));
  });

  it('counts MVMs, MACs, conversions and programmed cells per tile', async () => {
    const emu = new CrossbarEmulator('pcm', { seed: 1, overrides: { boundManagement: 'none' } });
    await emu.program(2, W, R, C);
    await emu.mvm(2, X, 4);
    const [c] = await emu.counters();
    expect(c).toEqual({ tileId: 2, mvms: 4, macs: 4 * R * C, dacConversions: 4 * R, adcConversions: 4 * C, cellsProgrammed: 2 * R * C });
  });

  it('all-zero and non-finite vectors of a batch: exactly 0 / NaN, no noise drawn, the other vectors unchanged, every vector converted', async () => {
    // Column 0 all positive: with positive inputs it saturates the ADC, so bound management runs too.
    const w = W.slice();
    for (let r = 0; r < R; r++) w[r * C] = 0.2;
    const vec = (i: number): Float32Array => X.subarray(i * R, (i + 1) * R);
    const zeros = new Float32Array(R);
    const nan = new Float32Array(R).fill(1);
    nan[5] = NaN;
    const mixed = [zeros, vec(0), vec(1), zeros, nan, zeros, vec(2), vec(3), zeros]; // runs of each kind, both ends special
    for (const profile of ['pcm', 'flash']) {
      const run = async (vectors: Float32Array[]): Promise<{ y: Float32Array; counters: { dacConversions: number; adcConversions: number } }> => {
        const emu = new CrossbarEmulator(profile, { seed: 5 });
        await emu.program(0, w, R, C);
        await emu.setAge(3600);
        const x = new Float32Array(vectors.length * R);
        vectors.forEach((v, i) => x.set(v, i * R));
        const y = (await emu.mvm(0, x, vectors.length)).slice();
        const [counters] = await emu.counters();
        return { y, counters: counters! };
      };
      const dense = await run([vec(0), vec(1), vec(2), vec(3)]);
      const withSpecial = await run(mixed);
      let d = 0;
      mixed.forEach((v, i) => {
        const y = withSpecial.y.subarray(i * C, (i + 1) * C);
        if (v === zeros) expect(y.every((o) => Object.is(o, 0)), `${profile} vector ${i}`).toBe(true);
        else if (v === nan) expect(y.every((o) => Number.isNaN(o)), `${profile} vector ${i}`).toBe(true);
        else expect(y, `${profile} vector ${i}`).toEqual(dense.y.subarray(d * C, (d++ + 1) * C));
      });
      expect(dense.y.subarray(0, C).some((o) => o !== 0)).toBe(true);
      // The saturating vectors took bound-management rounds; the five special ones one round each.
      expect(dense.counters.adcConversions).toBeGreaterThan(4 * C);
      expect(withSpecial.counters.adcConversions).toBe(dense.counters.adcConversions + 5 * C);
      expect(withSpecial.counters.dacConversions).toBe(dense.counters.dacConversions + 5 * R);
    }
  });

  it('refuses unknown profiles, invalid constants and matrices too large for the device', async () => {
    expect(listProfiles()).toEqual(expect.arrayContaining(['ideal', 'pcm', 'flash']));
    expect(() => loadProfile('memristor')).toThrow(/unknown device profile 'memristor'; known profiles: .*flash.*ideal.*pcm/);
    expect(() => loadProfile('pcm', { gMax: -1 })).toThrow(ProfileError);
    expect(() => loadProfile('pcm', { gMax: -1 })).toThrow(/gMax: .*>0/);
    expect(() => parseProfile({ ...loadProfile('pcm'), faults: { stuckOn: 0.8, stuckOff: 0.5 } })).toThrow(/faults: stuckOn \+ stuckOff must not exceed 1/);
    const emu = new CrossbarEmulator('pcm');
    const allocator = new TileAllocator(emu.info());
    expect(() => new AnalogMatrix(emu, allocator, new Float32Array(4096 * 4096), 4096, 4096, 'layer fc9')).toThrow(/layer fc9 \(4096×4096\) needs 256 tiles but the device has 64 free \(profile pcm, tiles 256×256, 64 in total\)/);
    await expect(emu.program(0, new Float32Array(300 * 10), 300, 10)).rejects.toThrow(/does not fit a 256×256 tile/);
    await expect(emu.mvm(5, X, 1)).rejects.toThrow(/tile 5 is not programmed/);
  });
});
