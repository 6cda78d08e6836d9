/**
 * The scheduler on real onnxruntime-web sessions (mlp.onnx): priorities under overload, shedding
 * policies, backpressure, deadlines, micro-batching, per-backend concurrency and event-loop yield.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import { DigitalModel } from '../../runtime/scheduler/placement.js';
import { RequestDroppedError } from '../../runtime/scheduler/errors.js';
import type { PlacedModel, PlacedRun, InferenceResult } from '../../runtime/scheduler/types.js';
import type { PreparedModel } from '../../runtime/backend.js';
import type { Feeds } from '../../runtime/model/feeds.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { fixtureModel, imageFeeds, values } from './fixtures.js';

const digital = new DigitalBackend();
let mlp: PreparedModel;
const expected: number[][] = [];

beforeAll(async () => {
  mlp = await digital.load(fixtureModel('mlp'));
  for (let i = 0; i < 64; i++) expected.push(values((await mlp.run(imageFeeds(i))).logits));
});
afterAll(async () => { await mlp.dispose(); await digital.dispose(); });

const scheduler = (options: ConstructorParameters<typeof Scheduler>[0] = {}): Scheduler => {
  const s = new Scheduler(options);
  s.addModel(new DigitalModel('mlp', mlp, 'digital'));
  return s;
};

const reasonOf = async (p: Promise<InferenceResult>): Promise<string> => p.then(() => 'ok', (e: RequestDroppedError) => e.reason);

describe('Scheduler', () => {
  it('under overload the high-priority stream meets every deadline while the low-priority one sheds', async () => {
    const s = scheduler();
    s.addStream('alarm', { model: 'mlp', priority: 10, capacity: 4, policy: 'drop-newest', deadlineMs: 5_000 });
    s.addStream('bulk', { model: 'mlp', priority: 0, capacity: 4, policy: 'drop-newest', deadlineMs: 5_000 });
    const high: Promise<InferenceResult>[] = [];
    const low: Promise<InferenceResult>[] = [];
    // Offered load far above what one lane serves: 400 bulk requests at once, an alarm every 20.
    for (let i = 0; i < 400; i++) {
      low.push((await s.submit('bulk', imageFeeds(i))).result);
      if (i % 20 === 0) high.push((await s.submit('alarm', imageFeeds(i))).result);
      if (i % 10 === 9) await new Promise((r) => setImmediate(r)); // the lane serves about one job per turn
    }
    const highResults = await Promise.all(high);
    const lowOutcomes = await Promise.all(low.map(reasonOf));
    const snap = s.snapshot().streams;
    expect(highResults).toHaveLength(20);
    highResults.forEach((r, k) => expect(values(r.outputs.logits)).toEqual(expected[(k * 20) % 64]));
    expect(snap.alarm).toMatchObject({ submitted: 20, completed: 20, dropped: 0, expired: 0, late: 0 });
    expect(lowOutcomes.filter((o) => o === 'shed').length).toBeGreaterThan(250);
    expect(snap.bulk!.dropped).toBe(lowOutcomes.filter((o) => o === 'shed').length);
    expect(snap.bulk!.completed + snap.bulk!.dropped).toBe(400);
    await s.close();
  });

  it('drop-oldest keeps only the freshest frames', async () => {
    const s = scheduler();
    s.addStream('camera', { model: 'mlp', capacity: 2, policy: 'drop-oldest' });
    // 50 frames arrive while the first one is being inferred.
    const tickets = await Promise.all(Array.from({ length: 50 }, (_, i) => s.submit('camera', imageFeeds(i))));
    const outcomes = await Promise.all(tickets.map((t) => t.result.then((r) => values(r.outputs.logits), (e: RequestDroppedError) => e.reason)));
    const served = outcomes.flatMap((o, i) => (o === 'shed' ? [] : [i]));
    expect(served).toEqual([0, 48, 49]);
    expect(outcomes[48]).toEqual(expected[48]);
    expect(outcomes[49]).toEqual(expected[49]);
    expect(s.snapshot().streams.camera).toMatchObject({ submitted: 50, completed: 3, dropped: 47, maxDepth: 2 });
    await s.close();
  });

  it('block applies backpressure: submit waits for room and nothing is lost', async () => {
    const s = scheduler();
    s.addStream('log', { model: 'mlp', capacity: 2, policy: 'block' });
    // Fire 10 submissions at once: one runs, two fit the queue, the other seven must wait.
    let admitted = 0;
    const tickets = Array.from({ length: 10 }, (_, i) => s.submit('log', imageFeeds(i)).then((t) => { admitted++; return t; }));
    await Promise.resolve();
    await Promise.resolve();
    expect(admitted).toBeLessThanOrEqual(3);
    expect(s.snapshot().streams.log!.blocked).toBeGreaterThanOrEqual(7);
    // A producer that awaits submit() is paced by the consumer.
    const paced: Promise<InferenceResult>[] = [];
    for (let i = 10; i < 60; i++) {
      paced.push((await s.submit('log', imageFeeds(i))).result);
      expect(s.snapshot().streams.log!.depth).toBeLessThanOrEqual(2);
    }
    const results = await Promise.all([...(await Promise.all(tickets)).map((t) => t.result), ...paced]);
    results.forEach((r, i) => expect(values(r.outputs.logits)).toEqual(expected[i % 64]));
    expect(s.snapshot().streams.log).toMatchObject({ submitted: 60, completed: 60, dropped: 0, expired: 0, maxDepth: 2 });
    await s.close();
  });

  it('drops requests whose deadline passed while queued, without running them', async () => {
    const clock = new ManualClock(0);
    const s = scheduler({ clock });
    s.addStream('s', { model: 'mlp', capacity: 8, deadlineMs: 10 });
    const before = digital.counters().inferences;
    const first = (await s.submit('s', imageFeeds(0))).result; // starts running at once
    const stale = await Promise.all([1, 2, 3, 4].map((i) => s.submit('s', imageFeeds(i))));
    const fresh = (await s.submit('s', imageFeeds(5), { deadlineMs: 1_000 })).result;
    clock.advance(50); // device time moves past the 10 ms budget before the lane is free again
    await first;
    expect(await Promise.all(stale.map((t) => reasonOf(t.result)))).toEqual(['expired', 'expired', 'expired', 'expired']);
    expect(values((await fresh).outputs.logits)).toEqual(expected[5]);
    expect(digital.counters().inferences - before).toBe(2);
    expect(s.snapshot().streams.s).toMatchObject({ completed: 2, expired: 4, dropped: 0 });
    await s.close();
  });

  it('micro-batches a sensor stream: up to N requests run as one batch and results are split back', async () => {
    const s = scheduler();
    s.addStream('sensor', { model: 'mlp', capacity: 32, policy: 'block', batch: { maxSize: 4, maxWaitMs: 60_000 } });
    const before = digital.counters().inferences;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => s.infer('sensor', imageFeeds(i))));
    expect(digital.counters().inferences - before).toBe(2);
    results.forEach((r, i) => {
      expect(r.batchSize).toBe(4);
      expect(r.outputs.logits!.dims).toEqual([1, 10]);
      values(r.outputs.logits).forEach((v, c) => expect(v).toBeCloseTo(expected[i]![c]!, 4));
    });
    await s.close();
  });

  it('runs a partial batch when the window runs out, and splits requests of several rows', async () => {
    const s = scheduler();
    s.addStream('sensor', { model: 'mlp', capacity: 32, batch: { maxSize: 16, maxWaitMs: 20 } });
    const before = digital.counters().inferences;
    const [a, b, c] = await Promise.all([s.infer('sensor', imageFeeds(0, 2)), s.infer('sensor', imageFeeds(2)), s.infer('sensor', imageFeeds(3, 3))]);
    expect(digital.counters().inferences - before).toBe(1);
    expect([a!.batchSize, a!.outputs.logits!.dims, b!.outputs.logits!.dims, c!.outputs.logits!.dims]).toEqual([3, [2, 10], [1, 10], [3, 10]]);
    values(c!.outputs.logits).slice(20, 30).forEach((v, k) => expect(v).toBeCloseTo(expected[5]![k]!, 4));
    expect(s.snapshot().streams.sensor!.batches).toBe(1);
    await s.close();
  });

  it('refuses bad feeds at submit and changes nothing', async () => {
    const s = scheduler();
    s.addStream('s', { model: 'mlp' });
    await expect(s.submit('s', { input: { type: 'float32', data: new Float32Array(10), dims: [1, 10] } })).rejects.toThrow(/input 'input' must have shape/);
    await expect(s.submit('nope', imageFeeds(0))).rejects.toThrow(/unknown stream 'nope'/);
    expect(s.snapshot().streams.s).toMatchObject({ submitted: 0, completed: 0 });
    await s.close();
  });

  it('limits concurrent jobs per backend lane', async () => {
    let running = 0;
    let maxRunning = 0;
    // A placed model whose work is asynchronous (as a remote accelerator's is), to see overlap.
    const slow = (id: string, lane: string): PlacedModel => ({
      id, lane, inputs: mlp.inputs, outputs: mlp.outputs,
      async run(feeds: Feeds): Promise<PlacedRun> {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, 2));
        const outputs = await mlp.run(feeds);
        running--;
        return { outputs, backend: 'analog' };
      },
      snapshot: () => ({ id }),
      dispose: async () => undefined,
    });
    const s = new Scheduler({ concurrency: { accel: 3 } });
    s.addModel(slow('m', 'accel'));
    s.addStream('s', { model: 'm', capacity: 100, policy: 'block' });
    await Promise.all(Array.from({ length: 30 }, (_, i) => s.infer('s', imageFeeds(i))));
    expect(maxRunning).toBe(3);
    expect(s.snapshot().backends.accel).toMatchObject({ concurrency: 3, completed: 30, running: 0 });
    await s.close();
  });

  it('yields to the event loop between jobs', async () => {
    const s = scheduler();
    s.addStream('s', { model: 'mlp', capacity: 300, policy: 'block' });
    let ticks = 0;
    let stop = false;
    const tick = (): void => { ticks++; if (!stop) setImmediate(tick); };
    setImmediate(tick);
    const all = Promise.all(Array.from({ length: 200 }, (_, i) => s.infer('s', imageFeeds(i))));
    await all;
    stop = true;
    // Without a yield between jobs, no setImmediate callback would run until the queue drained.
    expect(ticks).toBeGreaterThan(100);
    await s.close();
  });

  it('close() reports queued requests as closed', async () => {
    const s = scheduler();
    s.addStream('s', { model: 'mlp', capacity: 8 });
    const tickets = await Promise.all([0, 1, 2].map((i) => s.submit('s', imageFeeds(i))));
    await s.close();
    expect(await Promise.all(tickets.map((t) => reasonOf(t.result)))).toEqual(['ok', 'closed', 'closed']);
    await expect(s.submit('s', imageFeeds(0))).rejects.toThrow(/closed/);
  });
});
