/** Pausing and resuming a stream (the pause-stream / resume-stream commands) on a real onnxruntime-web session. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import type { PreparedModel } from '../../runtime/backend.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { RequestDroppedError } from '../../runtime/scheduler/errors.js';
import { DigitalModel } from '../../runtime/scheduler/placement.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import type { InferenceResult } from '../../runtime/scheduler/types.js';
import { fixtureModel, imageFeeds, values } from './fixtures.js';

const digital = new DigitalBackend();
let mlp: PreparedModel;
const expected: number[][] = [];

beforeAll(async () => {
  mlp = await digital.load(fixtureModel('mlp'));
  for (let i = 0; i < 8; i++) expected.push(values((await mlp.run(imageFeeds(i))).logits));
});
afterAll(async () => { await mlp.dispose(); await digital.dispose(); });

const outcome = (p: Promise<InferenceResult>): Promise<number[] | string> => p.then((r) => values(r.outputs.logits), (e: RequestDroppedError) => e.reason);
/** Lets the lane run whatever it can. */
const settle = async (turns = 20): Promise<void> => { for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r)); };

describe('Scheduler pause/resume', () => {
  it('a paused stream queues and sheds by its policy but runs nothing; other streams on the lane keep running; resume runs what queued', async () => {
    const s = new Scheduler();
    s.addModel(new DigitalModel('mlp', mlp, 'digital'));
    s.addStream('camera', { model: 'mlp', capacity: 3, policy: 'drop-oldest' });
    s.addStream('sensor', { model: 'mlp', capacity: 8 });
    s.pauseStream('camera');
    s.pauseStream('camera'); // idempotent
    expect(s.isPaused('camera')).toBe(true);
    const camera = await Promise.all(Array.from({ length: 5 }, (_, i) => s.submit('camera', imageFeeds(i))));
    const cameraOutcomes = camera.map((t) => outcome(t.result));
    const sensor = await s.infer('sensor', imageFeeds(7));
    expect(values(sensor.outputs.logits)).toEqual(expected[7]);
    await settle();
    expect(s.snapshot().streams.camera).toMatchObject({ paused: true, submitted: 5, completed: 0, dropped: 2, depth: 3 });

    s.resumeStream('camera');
    await s.idle();
    expect(await Promise.all(cameraOutcomes)).toEqual(['shed', 'shed', expected[2], expected[3], expected[4]]);
    expect(s.snapshot().streams.camera).toMatchObject({ paused: false, completed: 3, depth: 0 });
    s.resumeStream('camera'); // idempotent
    expect(values((await s.infer('camera', imageFeeds(1))).outputs.logits)).toEqual(expected[1]);
    expect(() => s.pauseStream('nope')).toThrow(/unknown stream 'nope'/);
    await s.close();
  });

  it('deadlines still expire requests of a paused stream', async () => {
    const clock = new ManualClock(0);
    const s = new Scheduler({ clock });
    s.addModel(new DigitalModel('mlp', mlp, 'digital'));
    s.addStream('camera', { model: 'mlp', deadlineMs: 100 });
    s.addStream('other', { model: 'mlp' });
    s.pauseStream('camera');
    const t = await s.submit('camera', imageFeeds(0));
    clock.advance(200);
    await s.infer('other', imageFeeds(1)); // a pick on the lane sees the expired request
    expect(await outcome(t.result)).toBe('expired');
    s.resumeStream('camera');
    await s.idle();
    expect(s.snapshot().streams.camera).toMatchObject({ expired: 1, completed: 0 });
    await s.close();
  });
});
