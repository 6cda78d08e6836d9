import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/index.js';
import { isDigitalExact, listProfiles, loadProfile, overridesFromFlags, parseProfile, ProfileError } from '../../drivers/crossbar/profile.js';

describe('device profiles', () => {
  it('ships ideal, pcm and flash, all valid, every cited field present', () => {
    expect(listProfiles()).toEqual(expect.arrayContaining(['flash', 'ideal', 'pcm']));
    for (const name of listProfiles()) {
      const p = loadProfile(name);
      expect(p.name).toBe(name);
      expect(Object.keys(p.sources).length).toBeGreaterThan(0);
    }
    expect(isDigitalExact(loadProfile('ideal'))).toBe(true);
    expect(isDigitalExact(loadProfile('pcm'))).toBe(false);
  });

  it('pcm holds the published constants, each with a source', () => {
    const p = loadProfile('pcm');
    expect(p.tile).toEqual({ rows: 256, cols: 256, count: 64 }); // HERMES: 64 cores of 256×256
    expect(p.gMax).toBe(25);
    expect(p.programmingNoise.c).toEqual([0.26348, 1.965, -1.1731]);
    expect(p.drift.t0).toBe(20);
    expect(p.drift.nuMean).toEqual({ a: -0.0155, b: 0.0244, min: 0.049, max: 0.1 });
    expect(p.drift.nuStd).toEqual({ a: -0.0125, b: -0.0059, min: 0.008, max: 0.045 });
    expect(p.readNoise).toMatchObject({ qsCoeff: 0.0088, qsExponent: 0.65, qsFloor: 1e-3, qsMax: 0.2, tRead: 2.5e-7 });
    expect(p.outputNoise).toBe(0.06);
    expect(p.dac.bits).toBe(7);
    expect(p.adc).toEqual({ bits: 8, bound: 12 });
    expect(p.gdc).toBe('global');
    for (const field of ['tile', 'programmingNoise.c', 'drift.nuMean', 'drift.nuStd', 'readNoise.qsCoeff', 'outputNoise', 'dac.bits', 'adc.bits', 'adc.bound', 'gdc', 'irDrop.wireResistance', 'temperature.coefficient']) {
      expect(p.sources[field], field).toMatch(/aihwkit|Le Gallo|HERMES|assumption/);
    }
    expect(loadProfile('flash').tile.count).toBe(76); // Mythic M1076
    expect(loadProfile('flash').sources['programmingNoise.c']).toMatch(/assumption/);
  });

  it('names the known profiles when the name is unknown', () => {
    expect(() => loadProfile('memristor')).toThrow(ProfileError);
    expect(() => loadProfile('memristor')).toThrow(/unknown device profile 'memristor'; known profiles: flash, ideal, pcm/);
    expect(() => new CrossbarEmulator('memristor')).toThrow(/known profiles/);
  });

  it('names the field of an invalid constant, in overrides and in files', () => {
    expect(() => loadProfile('pcm', { gMax: -25 })).toThrow(/invalid device profile .*pcm\.json[^]*- gMax: Too small/);
    expect(() => loadProfile('pcm', { adc: { bits: 0 } })).toThrow(/- adc\.bits: /);
    expect(() => loadProfile('pcm', { readNoise: { tRead: 0 } })).toThrow(/- readNoise\.tRead: /);
    expect(() => loadProfile('pcm', { faults: { stuckOn: 0.7, stuckOff: 0.7 } })).toThrow(/- faults: stuckOn \+ stuckOff must not exceed 1/);
    expect(() => loadProfile('ideal', { adc: { bits: 8 } })).toThrow(/- adc\.bound: a quantising ADC/);
    expect(() => loadProfile('pcm', { adcBits: 6 } as never)).toThrow(/Unrecognized key: "adcBits"/);
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-profile-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ ...loadProfile('pcm'), gMax: -1, sources: { 'drift.typo': 'x' } }));
    expect(() => loadProfile(file)).toThrow(new RegExp(`invalid device profile ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:[^]*gMax[^]*sources\\.drift\\.typo: cites 'drift\\.typo'`));
    writeFileSync(file, '{ not json');
    expect(() => loadProfile(file)).toThrow(/cannot read device profile/);
  });

  it('loads a profile file by path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-profile-'));
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify({ ...loadProfile('pcm'), name: 'mine', tile: { rows: 128, cols: 64, count: 8 } }));
    const emu = new CrossbarEmulator(file);
    expect(emu.info()).toMatchObject({ profile: 'mine', tileRows: 128, tileCols: 64, tiles: 8 });
  });

  it('applies overrides to names and to profile objects; command-line flags map onto them', () => {
    expect(overridesFromFlags({ adcBits: 6, gdc: 'on' })).toEqual({ adc: { bits: 6 }, gdc: 'global' });
    expect(overridesFromFlags({ dacBits: 5, gdc: 'off' })).toEqual({ dac: { bits: 5 }, gdc: 'off' });
    const byName = new CrossbarEmulator('pcm', { overrides: overridesFromFlags({ adcBits: 6, gdc: 'off' }) });
    expect(byName.info().adcBits).toBe(6);
    expect(byName.profile.gdc).toBe('off');
    const byObject = new CrossbarEmulator(loadProfile('pcm'), { overrides: { dac: { bits: 4 }, readNoise: { enabled: false } } });
    expect(byObject.info().dacBits).toBe(4);
    expect(byObject.profile.readNoise.enabled).toBe(false);
    expect(byObject.profile.readNoise.qsCoeff).toBe(0.0088); // untouched siblings stay
    expect(() => new CrossbarEmulator(loadProfile('pcm'), { overrides: { gMax: 0 } })).toThrow(/gMax/);
    expect(new CrossbarEmulator('ideal').info()).toMatchObject({ dacBits: Infinity, adcBits: Infinity, tileRows: 256 });
  });

  it('defaults the optional aihwkit scales and allows an energy section', () => {
    const raw = structuredClone(loadProfile('pcm')) as Record<string, unknown> & { programmingNoise: Record<string, unknown> };
    delete raw.programmingNoise.scale;
    delete raw.programmingNoise.gMaxReference;
    const energy = { macFj: 10, dac: { pj: 0.1, atBits: 8, kneeBits: 8 }, adc: { pj: 1, atBits: 8, kneeBits: 8 }, programPjPerCell: 100 };
    const p = parseProfile({ ...raw, energy });
    expect(p.programmingNoise.scale).toBe(1);
    expect(p.programmingNoise.gMaxReference).toBe(25);
    // validated by runtime/power's schema, which defaults the thermal-noise factor and nominal bits
    expect(p.energy).toEqual({ ...energy, dac: { ...energy.dac, perBitAboveKnee: 4 }, adc: { ...energy.adc, perBitAboveKnee: 4 }, nominalBits: 8 });
    expect(() => parseProfile({ ...raw, energy: { macJ: 1e-14 } })).toThrow(/energy/);
  });
});
