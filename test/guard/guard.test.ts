/**
 * The accuracy guard on the real crossbar emulator and real onnxruntime sessions (mlp.onnx, the
 * 64-image canary set): years of device drift through setAge, and stuck-at faults. Each decay is
 * detected and the escalation restores canary agreement to the threshold, or demotes to digital.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import type { CrossbarDriver } from '../../runtime/accelerator.js';
import { AnalogBackend, HybridModel } from '../../runtime/hybrid/analog-backend.js';
import { AcceleratorSupervisor } from '../../runtime/scheduler/supervisor.js';
import { FallbackModel } from '../../runtime/scheduler/fallback-model.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import { guardHybridModel } from '../../runtime/guard/hybrid-target.js';
import type { AccuracyGuard, GuardEvent, GuardOptions } from '../../runtime/guard/accuracy-guard.js';
import { canary, fixtureModel, imageFeeds } from '../scheduler/fixtures.js';
import { StuckCells } from './stuck-cells.js';

const YEAR = 365 * 86_400;
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

/** mlp on the hybrid backend over `driver`, served with digital fallback, and its guard. */
async function guarded(driver: CrossbarDriver, options: Partial<GuardOptions> = {}) {
  const digital = new DigitalBackend();
  const analog = new AnalogBackend({ digital, driver });
  const supervisor = new AcceleratorSupervisor('analog', analog, { healthIntervalMs: 0 });
  const model = fixtureModel('mlp');
  const served = await FallbackModel.create('mlp', model, analog, supervisor, await digital.load(model));
  const guard = guardHybridModel(served, analog, digital, { canary, ...options });
  const events: GuardEvent[] = [];
  guard.on('escalation', (e) => events.push(e));
  cleanup.push(async () => { supervisor.stop(); await served.dispose(); await analog.dispose(); await digital.dispose(); });
  const tilesOf = (layer: number): number[] => (served.primary as HybridModel).runners[layer]!.matrices.flatMap((m) => m.tiles);
  return { served, guard, events, tilesOf, layerNames: (served.primary as HybridModel).runners.map((r) => r.layer.name) };
}

const steps = (events: GuardEvent[]): string[] => events.map((e) => `${e.step}${e.layer ? ` ${e.layer}` : ''}:${e.restored ? 'restored' : 'not restored'}`);

async function expectHealthy(guard: AccuracyGuard): Promise<void> {
  const r = await guard.check();
  expect(r.steps).toEqual([]);
  expect(r.figures!.agreement).toBeGreaterThanOrEqual(guard.thresholds.agreementLow);
  expect(r.figures!.cosine).toBeGreaterThanOrEqual(guard.thresholds.cosineLow);
}

describe('AccuracyGuard', () => {
  it('10 years of drift without refreshed compensation: re-calibration restores the canary', async () => {
    // Drift compensation is only refreshed when asked (the guard asks).
    const device = new CrossbarEmulator('pcm', { seed: 1, calibrateOnSetAge: false });
    const { guard, events } = await guarded(device);
    await expectHealthy(guard);
    await device.setAge(10 * YEAR);
    const report = await guard.check();
    expect(report.figures!.agreement).toBeLessThan(guard.thresholds.agreementLow);
    expect(steps(events)).toEqual(['recalibrate:restored']);
    expect(events[0]!.after.agreement).toBeGreaterThanOrEqual(guard.thresholds.agreementHigh);
    expect(events[0]!.after.cosine).toBeGreaterThan(events[0]!.before.cosine);
    await expectHealthy(guard);
    expect(guard.snapshot()).toMatchObject({ state: 'ok', escalations: { recalibrate: 1 }, demotedLayers: [] });
  });

  it('drift on a device without compensation: re-calibration cannot help, re-programming restores it', async () => {
    const device = new CrossbarEmulator('pcm', { seed: 2, overrides: { gdc: 'off' } });
    const { guard, events } = await guarded(device);
    await expectHealthy(guard);
    await device.setAge(10 * YEAR);
    await guard.check();
    expect(steps(events)).toEqual(['recalibrate:not restored', 'reprogram:restored']);
    expect(events[1]!.after.agreement).toBeGreaterThanOrEqual(guard.thresholds.agreementHigh);
    await expectHealthy(guard);
  });

  it('stuck-at faults under one layer: re-programming cannot heal them, the faulty layer goes digital', async () => {
    const device = new StuckCells(new CrossbarEmulator('pcm', { seed: 3 }));
    const { guard, events, served, tilesOf, layerNames } = await guarded(device);
    await device.inject(tilesOf(0), 0.2); // a fifth of the first layer's cells stuck
    await guard.check();
    expect(steps(events)).toEqual(['recalibrate:not restored', 'reprogram:not restored', `demote-layer ${layerNames[0]}:restored`]);
    expect(events[2]!.layerError).toBeGreaterThan(0.2);
    expect(guard.snapshot().demotedLayers).toEqual([layerNames[0]]);
    // Still served by the accelerator, with that layer on onnxruntime.
    const run = await served.run(imageFeeds(0));
    expect(run.backend).toBe('analog');
    const placement = (served.primary as HybridModel).partition.placements.find((p) => p.name === layerNames[0]);
    expect(placement).toMatchObject({ target: 'digital', reason: expect.stringMatching(/accuracy guard/) });
    await expectHealthy(guard);
  });

  it('faults everywhere: the whole model is demoted to digital, and promoted back once the device is repaired', async () => {
    const device = new StuckCells(new CrossbarEmulator('pcm', { seed: 4 }));
    const { guard, events, served } = await guarded(device, { promoteEvery: 2 });
    const scheduler = new Scheduler();
    scheduler.addModel(served);
    scheduler.addStream('s', { model: 'mlp' });
    scheduler.attachGuard('mlp', guard);
    cleanup.push(() => scheduler.close());
    await device.inject(device.allTiles, 0.3); // layers moved to other tiles find them faulty too
    const report = await guard.check();
    expect(report.state).toBe('demoted');
    expect(steps(events).at(-1)).toBe('demote-model:restored');
    expect(steps(events).filter((s) => s.startsWith('demote-layer'))).toHaveLength(2); // never the last analog layer
    expect(await scheduler.infer('s', imageFeeds(1))).toMatchObject({ backend: 'digital-fallback', fallbackReason: 'demoted' });
    const snap = scheduler.snapshot();
    expect(snap.guards.mlp).toMatchObject({ state: 'demoted', escalations: { 'demote-model': 1 } });
    expect(snap.models.mlp).toMatchObject({ state: 'demoted', fallbacks: { demoted: 1 } });

    await device.heal();
    expect((await guard.check()).steps).toEqual([]); // still demoted: the retry comes every 2nd check
    const retry = await guard.check();
    expect(retry.steps.map((s) => [s.step, s.restored])).toEqual([['promote-model', true]]);
    expect(guard.snapshot().state).toBe('ok');
    expect((await scheduler.infer('s', imageFeeds(2))).backend).toBe('analog');
  });

  it('skips checks while the accelerator is degraded', async () => {
    const device = new CrossbarEmulator('pcm', { seed: 5 });
    const { guard, served } = await guarded(device);
    device.setHealth('unhealthy', 'test');
    expect((await served.run(imageFeeds(0))).backend).toBe('digital-fallback');
    expect(await guard.check()).toMatchObject({ state: 'skipped', skipped: expect.stringMatching(/degraded/) });
  });
});
