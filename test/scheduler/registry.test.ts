/** Backend registry: priorities, ORT-style resolution, placement policies and placing real models. */
import { afterEach, describe, expect, it } from 'vitest';
import { BackendRegistry, DIGITAL, type Backend } from '../../runtime/backend.js';
import { resolveConfig } from '../../runtime/config.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { ModelPlacer } from '../../runtime/scheduler/placement.js';
import { schedulerFromConfig } from '../../runtime/scheduler/from-config.js';
import { fixtureModel, imageFeeds } from './fixtures.js';

const disposers: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const d of disposers.splice(0).reverse()) await d(); });

/** digital (0) and analog on the ideal emulator (10), as the CLI registers them. */
function registry(placement = {}): BackendRegistry {
  const r = new BackendRegistry({ digital: () => new DigitalBackend(), placement });
  r.register('analog', async () => new AnalogBackend({ digital: await r.get(DIGITAL), driver: new CrossbarEmulator('ideal', { seed: 1 }) }), 10);
  disposers.push(() => r.dispose());
  return r;
}

describe('BackendRegistry', () => {
  it('lists by priority and resolves the first backend that initialises, saying why others did not', async () => {
    const r = registry();
    r.register('npu', () => { throw new Error('no NPU on this board'); }, 20);
    expect(r.list()).toEqual(['npu', 'analog', DIGITAL]);
    expect(r.priorityOf('npu')).toBe(20);
    const { name, skipped } = await r.resolve();
    expect(name).toBe('analog');
    expect(skipped).toEqual([{ name: 'npu', error: 'no NPU on this board' }]);
    expect(() => r.register('analog', () => new DigitalBackend())).toThrow(/already registered/);
  });

  it('retries a backend whose factory failed (a device may come up later)', async () => {
    const r = new BackendRegistry();
    let up = false;
    r.register('late', () => { if (!up) throw new Error('not yet'); return new DigitalBackend() as Backend; });
    await expect(r.get('late')).rejects.toThrow('not yet');
    up = true;
    expect((await r.get('late')).name).toBe(DIGITAL);
    await r.dispose();
  });

  it('insists on the digital backend', async () => {
    await expect(new BackendRegistry().digital()).rejects.toThrow(/digital backend must always be present/);
  });

  it('takes per-model placement policies from the config', () => {
    const config = resolveConfig({ file: { path: 'c.json', text: JSON.stringify({ placement: { default: 'digital', models: { cnn: 'analog', mlp: 'auto' } } }) } });
    const r = registry(config.placement);
    expect([r.placementOf('cnn'), r.placementOf('mlp'), r.placementOf('other')]).toEqual(['analog', 'auto', 'digital']);
    expect(r.candidates('digital')).toEqual([DIGITAL]);
    expect(r.candidates('analog')).toEqual(['analog', DIGITAL]);
    expect(() => resolveConfig({ flags: { placement: { default: 'gpu' } } })).toThrow(/placement\.default/);
  });

  it('places models by policy: digital, analog with fallback, auto', async () => {
    const r = registry({ models: { a: 'analog', d: 'digital', x: 'auto' } });
    const placer = new ModelPlacer(r, { supervisor: { healthIntervalMs: 0 } });
    disposers.push(() => placer.dispose());
    const model = fixtureModel('mlp');
    const [a, d, x] = await Promise.all(['a', 'd', 'x'].map((id) => placer.place(id, model)));
    disposers.push(() => Promise.all([a, d, x].map((m) => m!.dispose())).then(() => undefined));
    expect([a!.lane, d!.lane, x!.lane]).toEqual(['analog', DIGITAL, 'analog']);
    const runs = await Promise.all([a, d, x].map((m) => m!.run(imageFeeds(0))));
    expect(runs.map((run) => run.backend)).toEqual(['analog', 'digital', 'analog']);
    // The ideal device computes what onnxruntime computes.
    const [ra, rd] = runs.map((run) => Array.from(run.outputs.logits!.data as Float32Array));
    ra!.forEach((v, i) => expect(v).toBeCloseTo(rd![i]!, 3));
  });

  it('auto falls back to digital for a model no accelerator takes; analog refuses it', async () => {
    const r = new BackendRegistry({ digital: () => new DigitalBackend() });
    r.register('tiny', async () => new AnalogBackend({ digital: await r.get(DIGITAL), driver: new CrossbarEmulator('ideal', { overrides: { tile: { count: 1 } } }), fallbackOversized: false }), 10);
    disposers.push(() => r.dispose());
    const placer = new ModelPlacer(r, { supervisor: { healthIntervalMs: 0 } });
    disposers.push(() => placer.dispose());
    const auto = await placer.place('mlp', fixtureModel('mlp'), 'auto');
    disposers.push(() => auto.dispose());
    expect(auto.lane).toBe(DIGITAL);
    expect(auto.snapshot().note).toMatch(/tiny: .*tiles/);
    await expect(placer.place('mlp', fixtureModel('mlp'), 'analog')).rejects.toThrow(/placement 'analog' but no accelerator takes it/);
  });

  it('builds the scheduler the config describes', async () => {
    const config = resolveConfig({ file: { path: 'c.json', text: JSON.stringify({
      placement: { models: { cnn: 'analog', mlp: 'digital' } },
      scheduler: { streams: { camera: { model: 'cnn', priority: 10, capacity: 2, deadlineMs: 33 }, sensor: { model: 'mlp', policy: 'block', batch: { maxSize: 4, maxWaitMs: 5 } } } },
      fallback: { healthIntervalMs: 0 },
    }) } });
    const models = new Map([['cnn', fixtureModel('cnn')], ['mlp', fixtureModel('mlp')]]);
    const { scheduler, close } = await schedulerFromConfig(config, registry(), models);
    disposers.push(close);
    const [cam, sensor] = await Promise.all([scheduler.infer('camera', imageFeeds(0)), scheduler.infer('sensor', imageFeeds(1))]);
    expect([cam!.backend, sensor!.backend]).toEqual(['analog', 'digital']);
    expect(scheduler.snapshot().streams.camera).toMatchObject({ model: 'cnn', priority: 10, capacity: 2, policy: 'drop-oldest', completed: 1 });
    const bad = resolveConfig({ flags: { scheduler: { streams: { s: { model: 'nope' } } } } });
    await expect(schedulerFromConfig(bad, registry(), models)).rejects.toThrow(/scheduler\.streams\.s\.model: no model 'nope'/);
  });
});
