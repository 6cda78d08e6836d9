/**
 * The analog path's output boundary: NaN or Infinity from the device for finite inputs is never
 * returned as an answer. A direct run rejects with the layer named; a served model answers the
 * request digitally with the reason. Profiles outside physical bounds are refused before that.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { loadProfile } from '../../drivers/crossbar/profile.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import type { CrossbarDriver } from '../../runtime/accelerator.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { AcceleratorError } from '../../runtime/scheduler/failure.js';
import { FallbackModel } from '../../runtime/scheduler/fallback-model.js';
import { AcceleratorSupervisor } from '../../runtime/scheduler/supervisor.js';
import { fixtureModel, imageFeeds } from '../scheduler/fixtures.js';

/** A real emulator whose converters fail: once `broken`, every MVM result carries one NaN. */
class NanDevice implements CrossbarDriver {
  broken = false;
  constructor(readonly inner: CrossbarDriver) {}
  info() { return this.inner.info(); }
  program(t: number, w: Float32Array, r: number, c: number) { return this.inner.program(t, w, r, c); }
  async mvm(t: number, x: Float32Array, b: number) {
    const y = await this.inner.mvm(t, x, b);
    if (this.broken && y.length) y[y.length - 1] = NaN;
    return y;
  }
  calibrate(t: number) { return this.inner.calibrate(t); }
  readConductances(t: number) { return this.inner.readConductances(t); }
  setAge(s: number) { return this.inner.setAge(s); }
  temperature() { return this.inner.temperature(); }
  health() { return this.inner.health(); }
  counters() { return this.inner.counters(); }
  dispose() { return this.inner.dispose(); }
}

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

describe('analog output boundary', () => {
  it('a NaN from the device for finite inputs rejects the run, naming the layer', async () => {
    const device = new NanDevice(new CrossbarEmulator('pcm'));
    const digital = new DigitalBackend();
    const analog = new AnalogBackend({ digital, driver: device });
    cleanup.push(() => analog.dispose(), () => digital.dispose());
    const hybrid = await analog.load(fixtureModel('mlp'));
    const good = await hybrid.run(imageFeeds(0));
    expect(Array.from(good.logits!.data as Float32Array).every(Number.isFinite)).toBe(true);
    device.broken = true;
    const e = await hybrid.run(imageFeeds(0)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AcceleratorError);
    expect((e as AcceleratorError).message).toMatch(/analog layer '.*' returned NaN for finite inputs/);
  });

  it('a served model answers digitally, with the reason, instead of returning NaN', async () => {
    const device = new NanDevice(new CrossbarEmulator('pcm'));
    const digital = new DigitalBackend();
    const analog = new AnalogBackend({ digital, driver: device });
    const supervisor = new AcceleratorSupervisor('analog', analog, { healthIntervalMs: 0 });
    const model = fixtureModel('mlp');
    const reference = await digital.load(model);
    const served = await FallbackModel.create('mlp', model, analog, supervisor, await digital.load(model));
    cleanup.push(() => supervisor.stop(), () => served.dispose(), () => analog.dispose(), () => digital.dispose());
    device.broken = true;
    const r = await served.run(imageFeeds(3));
    expect(r.backend).toBe('digital-fallback');
    expect(r.fallbackReason).toBe('driver-error');
    expect(Array.from(r.outputs.logits!.data as Float32Array)).toEqual(Array.from((await reference.run(imageFeeds(3))).logits!.data as Float32Array));
  });
});

describe('device profiles have physical bounds', () => {
  it('refuses constants no device has (they turned outputs into NaN)', () => {
    expect(() => loadProfile('pcm', { gMax: 1e308 })).toThrow(/- gMax: Too big: expected number to be <=10000/);
    expect(() => loadProfile('pcm', { gMax: Infinity })).toThrow(/gMax/);
    expect(() => loadProfile('pcm', { temperature: { coefficient: 50 } })).toThrow(/temperature\.coefficient: Too big/);
    expect(() => loadProfile('pcm', { programmingNoise: { c: [1e300, 0, 0] } })).toThrow(/programmingNoise\.c\.0: Too big/);
    expect(() => loadProfile('pcm', { drift: { nuMean: { a: 0, b: 0, min: 0, max: 5 } } })).toThrow(/drift\.nuMean\.max: Too big/);
    expect(() => loadProfile('pcm', { adc: { bits: 8, bound: 1e30 } })).toThrow(/adc\.bound: Too big/);
    // The shipped profiles are inside the bounds.
    for (const name of ['ideal', 'pcm', 'flash']) expect(loadProfile(name).name).toBe(name);
  });
});
