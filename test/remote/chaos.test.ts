/**
 * Fallback under real failures of a real accelerator process (`edgerun accel-emulator`): SIGKILL
 * in the middle of a 2,000-request stream, SIGSTOP (a device that stops answering) and an injected
 * unhealthy report (SIGUSR1). Every request is answered — by digital fallback while the device is
 * away — and the device is re-admitted, with its tiles re-programmed, once it is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BackendRegistry, DIGITAL, type PreparedModel } from '../../runtime/backend.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { RemoteCrossbarClient } from '../../drivers/remote/client.js';
import { unixSocketTransport } from '../../drivers/remote/transport.js';
import { ModelPlacer } from '../../runtime/scheduler/placement.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import type { FallbackModel, FallbackSnapshot } from '../../runtime/scheduler/fallback-model.js';
import type { InferenceResult } from '../../runtime/scheduler/types.js';
import { fixtureModel, imageFeeds, values } from '../scheduler/fixtures.js';
import { DeviceProcess, tempSocketPath } from './device-process.js';
import { until } from '../helpers/until.js';

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The device process, the analog backend on a remote client, mlp placed 'analog', one stream. */
async function stack(proc: DeviceProcess, clientTimeoutMs = 300) {
  await proc.start();
  cleanup.push(() => proc.kill());
  const client = await RemoteCrossbarClient.connect(unixSocketTransport(proc.socket), { timeoutMs: clientTimeoutMs });
  cleanup.push(() => client.dispose());
  const registry = new BackendRegistry({ digital: () => new DigitalBackend() });
  registry.register('analog', async () => new AnalogBackend({ digital: await registry.get(DIGITAL), driver: client }), 10);
  cleanup.push(() => registry.dispose());
  const placer = new ModelPlacer(registry, {
    // A generous health timeout: a loaded test machine must not look like a dead device.
    supervisor: { healthIntervalMs: 50, healthTimeoutMs: 1000, probeInitialMs: 20, probeMaxMs: 200 },
    fallback: { runTimeoutMs: 2 * clientTimeoutMs },
  });
  cleanup.push(() => placer.dispose());
  const model = await placer.place('mlp', fixtureModel('mlp'), 'analog') as FallbackModel;
  cleanup.push(() => model.dispose());
  const scheduler = new Scheduler();
  scheduler.addModel(model);
  scheduler.addStream('sensor', { model: 'mlp', capacity: 8, policy: 'block' });
  cleanup.push(() => scheduler.close());
  const reference: PreparedModel = await (await registry.digital()).load(fixtureModel('mlp'));
  const expected: number[][] = [];
  for (let i = 0; i < 64; i++) expected.push(values((await reference.run(imageFeeds(i))).logits));
  const state = (): FallbackSnapshot => model.snapshot();
  return { client, model, scheduler, expected, state };
}

function checkOutputs(results: InferenceResult[], expected: number[][]): void {
  results.forEach((r, i) => {
    const want = expected[i % 64]!;
    // Fallback is the digital model itself; the ideal device reproduces it to float tolerance.
    if (r.backend === 'digital-fallback') expect(values(r.outputs.logits)).toEqual(want);
    else values(r.outputs.logits).forEach((v, c) => expect(v).toBeCloseTo(want[c]!, 3));
  });
}

describe('digital fallback with a real accelerator process', () => {
  it('SIGKILL mid-stream: 2,000 requests, none fails, then re-admission when the process is back', async () => {
    const proc = new DeviceProcess(tempSocketPath(), ['--profile', 'ideal', '--seed', '1']);
    const { client, scheduler, expected, state } = await stack(proc);
    const results: Promise<InferenceResult>[] = [];
    let restarted: Promise<void> | undefined;
    for (let i = 0; i < 2000; i++) {
      if (i === 300) proc.signal('SIGKILL'); // requests are in flight on the device right now
      if (i === 600) restarted = proc.start();
      // From here on, wait for re-admission (the restart takes a second): the rest must be analog again.
      if (i === 1500) { await restarted; await until('re-admission', () => state().state === 'serving', 20_000); }
      else if (i > 600 && i % 20 === 0) await sleep(1);
      results.push((await scheduler.submit('sensor', imageFeeds(i))).result);
    }
    const settled = await Promise.allSettled(results);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    const done = settled.map((s) => (s as PromiseFulfilledResult<InferenceResult>).value);
    const fallbacks = done.filter((r) => r.backend === 'digital-fallback');
    expect(fallbacks.length).toBeGreaterThan(0);
    expect(done.slice(0, 250).every((r) => r.backend === 'analog')).toBe(true);
    expect(done.slice(1500).every((r) => r.backend === 'analog')).toBe(true);
    expect(new Set(fallbacks.map((r) => r.fallbackReason))).toContain('connection-lost');
    checkOutputs(done, expected);

    const snap = scheduler.snapshot();
    expect(snap.streams.sensor).toMatchObject({ submitted: 2000, completed: 2000, failed: 0, dropped: 0 });
    expect(Object.values(snap.streams.sensor!.fallbacks).reduce((a, b) => a + b, 0)).toBe(fallbacks.length);
    const model = snap.models.mlp as FallbackSnapshot;
    expect(model.state).toBe('serving');
    expect(model.reprograms).toBeGreaterThanOrEqual(1);
    expect(model.accelerator.readmissions).toBeGreaterThanOrEqual(1);
    expect(model.accelerator.failures['connection-lost']).toBeGreaterThanOrEqual(1);
    expect(client.stats().restartsSeen).toBe(1);
  });

  it('a device that stops answering (SIGSTOP): timeouts, fallback, never a stuck queue; SIGCONT re-admits it', async () => {
    const proc = new DeviceProcess(tempSocketPath(), ['--profile', 'ideal']);
    // 1 s, not 300 ms: on a loaded machine an answer before the stop took longer than 300 ms and
    // counted as the device's timeout, which this test must see only after SIGSTOP.
    const { scheduler, expected, state } = await stack(proc, 1000);
    const results: Promise<InferenceResult>[] = [];
    for (let i = 0; i < 600; i++) {
      if (i === 100) proc.signal('SIGSTOP');
      if (i === 300) { await until('failed probes', () => state().accelerator.probes >= 2, 20_000); proc.signal('SIGCONT'); }
      if (i === 450) await until('re-admission', () => state().state === 'serving', 20_000);
      results.push((await scheduler.submit('sensor', imageFeeds(i))).result);
    }
    const done = await Promise.all(results);
    // The request in flight times out ('timeout') unless the periodic health check noticed first;
    // the ones after it see the accelerator degraded by that timeout.
    const fallbacks = done.flatMap((r, i) => (r.backend === 'digital-fallback' ? [[i, r.fallbackReason] as const] : []));
    expect(fallbacks.length).toBeGreaterThan(100);
    // Up to 9 requests (8 queued, 1 running) were admitted before the stop and run after it.
    expect(fallbacks.every(([i, reason]) => i >= 90 && (reason === 'timeout' || reason === 'degraded:timeout'))).toBe(true);
    expect(done.slice(0, 90).every((r) => r.backend === 'analog')).toBe(true);
    expect(done.slice(450).every((r) => r.backend === 'analog')).toBe(true);
    checkOutputs(done, expected);
    expect(scheduler.snapshot().streams.sensor).toMatchObject({ completed: 600, failed: 0 });
    expect(state().accelerator.failures.timeout).toBeGreaterThanOrEqual(1);
  });

  it('an unhealthy health report moves requests to digital until the device reports healthy again', async () => {
    const proc = new DeviceProcess(tempSocketPath(), ['--profile', 'ideal']);
    const { scheduler, state } = await stack(proc);
    expect((await scheduler.infer('sensor', imageFeeds(0))).backend).toBe('analog');
    proc.signal('SIGUSR1'); // the emulator now reports "unhealthy" (say, a thermal alarm)
    await until('the health check to notice', () => state().state === 'degraded', 20_000);
    const during = await scheduler.infer('sensor', imageFeeds(1));
    expect(during).toMatchObject({ backend: 'digital-fallback', fallbackReason: 'degraded:unhealthy' });
    expect(state().accelerator).toMatchObject({ reason: 'unhealthy', lastHealth: { state: 'unhealthy', detail: 'forced by SIGUSR1' } });
    proc.signal('SIGUSR1');
    await until('re-admission', () => state().state === 'serving', 20_000);
    expect((await scheduler.infer('sensor', imageFeeds(2))).backend).toBe('analog');
  });
});
