import { describe, expect, it } from 'vitest';
import { parseWaves, planWaves, Rollout, selectTargets, waveHalts } from '../../runtime/deploy/rollout.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `d${String(i).padStart(2, '0')}`);

describe('planWaves', () => {
  it('no devices: no waves', () => {
    expect(planWaves([], [10, 50, 100])).toEqual([]);
  });
  it('one device: one wave, even when the first percentage rounds to nothing', () => {
    expect(planWaves(['a'], [10, 50, 100])).toEqual([['a']]);
  });
  it('percentages that round to 0 still take one new device each', () => {
    expect(planWaves(ids(5), [1, 2, 100])).toEqual([['d00'], ['d01'], ['d02', 'd03', 'd04']]);
  });
  it('cumulative, each device in exactly one wave, in order', () => {
    const waves = planWaves(ids(20), [10, 50, 100]);
    expect(waves.map((w) => w.length)).toEqual([2, 8, 10]);
    expect(waves.flat()).toEqual(ids(20));
  });
  it('stops once every device is planned (more waves than devices)', () => {
    expect(planWaves(ids(2), [10, 20, 30, 100])).toEqual([['d00'], ['d01']]);
  });
  it('rounds up a fractional share (5 devices, 50% → 3)', () => {
    expect(planWaves(ids(5), [50, 100]).map((w) => w.length)).toEqual([3, 2]);
  });
});

describe('parseWaves', () => {
  it('reads percentages with or without %', () => {
    expect(parseWaves('10%,50%, 100')).toEqual([10, 50, 100]);
  });
  it.each(['', '10%,abc,100%', '0%,100%', '50%,20%,100%', '10%,50%', '10%,150%'])('refuses %j', (spec) => {
    expect(() => parseWaves(spec)).toThrow(/--waves/);
  });
});

describe('waveHalts', () => {
  it('threshold exactly met: goes on', () => {
    expect(waveHalts(['active', 'active', 'active', 'active', 'failed'], 0.2)).toEqual({ failureRate: 0.2, halts: false });
  });
  it('just above the threshold: halts', () => {
    expect(waveHalts(['active', 'active', 'failed', 'error'], 0.2)).toEqual({ failureRate: 0.5, halts: true });
  });
  it('threshold 0: any failure halts, no failure goes on', () => {
    expect(waveHalts(['active', 'rolled-back'], 0).halts).toBe(true);
    expect(waveHalts(['active'], 0).halts).toBe(false);
  });
  it('an empty wave has no failures', () => {
    expect(waveHalts([], 0)).toEqual({ failureRate: 0, halts: false });
  });
});

describe('selectTargets', () => {
  const birth = (device: string, extra: Record<string, unknown> = {}) => ({ state: 'online', device, fleet: 'f', runtime: 'edgerun 0.1.0', ...extra });
  it('online devices of the fleet and group, ordered by id; no group means default', () => {
    const t = selectTargets([
      birth('c', { group: 'g1', modelVersions: { cnn: '1.0.0' } }), birth('a', { group: 'g1' }), birth('b'),
      { ...birth('d', { group: 'g1' }), state: 'offline' }, birth('e', { group: 'g1', fleet: 'other' }), 'garbage', { device: 'x' },
    ], 'f', 'g1');
    expect(t).toEqual([
      { device: 'a', group: 'g1', runtime: 'edgerun 0.1.0', modelVersions: {} },
      { device: 'c', group: 'g1', runtime: 'edgerun 0.1.0', modelVersions: { cnn: '1.0.0' } },
    ]);
    expect(selectTargets([birth('b')], 'f', 'default').map((x) => x.group)).toEqual(['default']);
    expect(selectTargets([birth('b'), birth('a', { group: 'g1' })], 'f').map((x) => x.device)).toEqual(['a', 'b']);
  });
});

describe('Rollout', () => {
  const targets = ids(5).map((device) => ({ device, group: 'default', modelVersions: { cnn: '1.0.0' } }));
  it('halts after a wave beyond the threshold; later devices keep their version; rolled-back devices serve the old one', () => {
    const r = new Rollout({ model: 'cnn', version: '2.0.0', fleet: 'f', targets, percentages: [20, 60, 100], abortFailureRate: 0.2 });
    expect(r.waves.map((w) => w.map((t) => t.device))).toEqual([['d00'], ['d01', 'd02'], ['d03', 'd04']]);
    r.record(0, 'd00', 'active', { serving: '2.0.0' });
    expect(r.finishWave(0)).toBe(true);
    r.record(1, 'd01', 'active', { serving: '2.0.0' });
    r.record(1, 'd02', 'failed', { serving: '1.0.0', reason: 'canary-failed: agreement 0.4' });
    expect(r.finishWave(1)).toBe(false);
    expect(r.activated(1)).toEqual(['d01']);
    r.rolledBack('d01', '1.0.0', true);
    const report = r.report();
    expect(report.halted).toBe(true);
    expect(report.waves).toEqual([
      { wave: 1, devices: ['d00'], failureRate: 0, halted: false },
      { wave: 2, devices: ['d01', 'd02'], failureRate: 0.5, halted: true },
    ]);
    expect(report.devices.map((d) => [d.device, d.wave, d.outcome, d.serving, d.rolledBack])).toEqual([
      ['d00', 1, 'active', '2.0.0', undefined],
      ['d01', 2, 'active', '1.0.0', true],
      ['d02', 2, 'failed', '1.0.0', undefined],
      ['d03', undefined, 'not-started', '1.0.0', undefined],
      ['d04', undefined, 'not-started', '1.0.0', undefined],
    ]);
  });
  it('refuses an outcome for a device it does not target', () => {
    const r = new Rollout({ model: 'cnn', version: '2.0.0', fleet: 'f', targets, percentages: [100], abortFailureRate: 0 });
    expect(() => r.record(0, 'zz', 'active', {})).toThrow(/not a target/);
  });
});
