/**
 * Switching the model a stream uses while requests are in flight (what a deployment's switch does,
 * runtime/scheduler/switchable-model.ts), on real onnxruntime sessions: no request is lost, each is
 * answered whole by exactly one model — the old one until the switch, the new one after, never the
 * old one again — and the old one is disposed only after its last run finished.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import type { PreparedModel } from '../../runtime/backend.js';
import { withVersion } from '../../runtime/deploy/versioned-model.js';
import type { Feeds } from '../../runtime/model/feeds.js';
import { DigitalModel } from '../../runtime/scheduler/placement.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import { SwitchableModel } from '../../runtime/scheduler/switchable-model.js';
import type { InferenceResult } from '../../runtime/scheduler/types.js';
import { fixtureModel, imageFeeds, values } from './fixtures.js';

const digital = new DigitalBackend();
const N = 48;
const reference = { '1.0.0': [] as number[][], '2.0.0': [] as number[][] };

beforeAll(async () => {
  for (const [version, name] of [['1.0.0', 'cnn'], ['2.0.0', 'mlp']] as const) {
    const m = await digital.load(fixtureModel(name));
    for (let i = 0; i < N; i++) reference[version].push(values(Object.values(await m.run(imageFeeds(i)))[0]));
    await m.dispose();
  }
});
afterAll(async () => { await digital.dispose(); });

/** The prepared model, recording when its session is disposed and refusing runs after that. */
function watched(prepared: PreparedModel, log: string[], name: string): PreparedModel {
  let disposed = false;
  return {
    inputs: prepared.inputs, outputs: prepared.outputs,
    run: (feeds: Feeds) => {
      if (disposed) return Promise.reject(new Error(`${name} ran after it was disposed`));
      return prepared.run(feeds);
    },
    dispose: async () => { disposed = true; log.push(`dispose ${name}`); await prepared.dispose(); },
  } as PreparedModel;
}

describe('switching a model under load', () => {
  it('loses no request, answers each with one whole model, and disposes the old one after its last run', async () => {
    const log: string[] = [];
    const old = watched(await digital.load(fixtureModel('cnn')), log, '1.0.0');
    const next = watched(await digital.load(fixtureModel('mlp')), log, '2.0.0');
    const model = new SwitchableModel(withVersion(new DigitalModel('m', old, 'digital'), '1.0.0'), 'digital');
    const s = new Scheduler({});
    s.addModel(model);
    s.addStream('cam', { model: 'm', capacity: N, policy: 'block' });

    const pending: Promise<InferenceResult>[] = [];
    for (let i = 0; i < N / 2; i++) pending.push(s.infer('cam', imageFeeds(i)));
    // Let the first requests start, then switch while the rest are queued or running.
    await pending[0];
    const switched = model.replace(withVersion(new DigitalModel('m', next, 'digital'), '2.0.0'), 'digital').then(() => log.push('switched'));
    for (let i = N / 2; i < N; i++) pending.push(s.infer('cam', imageFeeds(i)).then((r) => { log.push(`result ${r.modelVersion}`); return r; }));
    const results = await Promise.all(pending);
    await switched;

    expect(results).toHaveLength(N);
    const versions = results.map((r) => r.modelVersion);
    // Before the switch the old version, after it the new; never the old one after the new.
    expect(versions[0]).toBe('1.0.0');
    expect(versions.at(-1)).toBe('2.0.0');
    const firstNew = versions.indexOf('2.0.0');
    expect(versions.slice(firstNew).every((v) => v === '2.0.0')).toBe(true);
    // Each answer is exactly what its model gives for that input.
    results.forEach((r, i) => expect(values(Object.values(r.outputs)[0]), `request ${i}`).toEqual(reference[r.modelVersion as '1.0.0' | '2.0.0'][i]));
    // The old session went away once its runs were done, not before; the new one stays.
    expect(log).toContain('dispose 1.0.0');
    expect(log).not.toContain('dispose 2.0.0');
    await model.dispose();
  });
});
