/**
 * The scheduler's cost and behaviour:
 *  1. one request through the scheduler vs a direct backend call, same model (mlp.onnx), side by side;
 *  2. a mixed-stream scenario in real time: a camera at 30 fps on cnn.onnx (analog, pcm emulator,
 *     latest frame wins) and a sensor at 50 Hz on mlp.onnx (digital, micro-batched), ~10 s
 *     (EDGERUN_BENCH_SECONDS): end-to-end p50/p99 per stream and the deadline-miss rate.
 */
import { readFile } from 'node:fs/promises';
import { loadModel } from '../runtime/model/load.js';
import { BackendRegistry, DIGITAL } from '../runtime/backend.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { Scheduler } from '../runtime/scheduler/scheduler.js';
import { DigitalModel, ModelPlacer } from '../runtime/scheduler/placement.js';
import { LatencyRecorder } from '../runtime/latency.js';
import type { Feeds } from '../runtime/model/feeds.js';
import { compare, fmt, report } from './measure.js';

const model = async (name: string) => loadModel(await readFile(new URL(`../models/${name}.onnx`, import.meta.url)), { source: name });
const image = (seed: number): Feeds => ({ input: { type: 'float32', data: Float32Array.from({ length: 784 }, (_, i) => ((i * 31 + seed * 17) % 97) / 97), dims: [1, 1, 28, 28] } });

export async function main(): Promise<void> {
  await overhead();
  await mixedStreams(Number(process.env.EDGERUN_BENCH_SECONDS ?? 10));
}

async function overhead(): Promise<void> {
  console.log('\n# scheduler overhead: scheduler.infer vs direct prepared.run (mlp, digital, batch 1)');
  const digital = new DigitalBackend();
  const prepared = await digital.load(await model('mlp'));
  const scheduler = new Scheduler();
  scheduler.addModel(new DigitalModel('mlp', prepared, 'digital'));
  scheduler.addStream('s', { model: 'mlp', capacity: 4, policy: 'block' });
  const feeds = image(1);
  // Rounds of ~60 ms: long enough that one GC pause or scheduler hiccup does not decide a round.
  const r = await compare({ baseline: () => prepared.run(feeds), candidate: () => scheduler.infer('s', feeds) }, 15, 2000, 2000);
  report('mlp: direct µs/inference', fmt(r.baselineUs, 1));
  report('mlp: through the scheduler µs/inference', fmt(r.candidateUs, 1));
  report('mlp: scheduler / direct', `${fmt(r.ratio, 3)}×`, { text: '≤ 1.05×', met: r.ratio <= 1.05 });
  await scheduler.close();
  await digital.dispose();
}

async function mixedStreams(seconds: number): Promise<void> {
  console.log(`\n# mixed streams, ${seconds} s real time: camera 30 fps cnn (analog pcm, drop-oldest, 33 ms deadline) + sensor 50 Hz mlp (digital, micro-batch ≤ 4 / 10 ms, 100 ms deadline)`);
  const registry = new BackendRegistry({ digital: () => new DigitalBackend(), placement: { models: { cnn: 'analog', mlp: 'digital' } } });
  registry.register('analog', async () => new AnalogBackend({ digital: await registry.get(DIGITAL), driver: new CrossbarEmulator('pcm', { seed: 1 }) }), 10);
  const placer = new ModelPlacer(registry);
  const scheduler = new Scheduler({ concurrency: { analog: 1, digital: 1 } });
  scheduler.addModel(await placer.place('cnn', await model('cnn')));
  scheduler.addModel(await placer.place('mlp', await model('mlp')));
  scheduler.addStream('camera', { model: 'cnn', priority: 10, capacity: 2, policy: 'drop-oldest', deadlineMs: 33 });
  scheduler.addStream('sensor', { model: 'mlp', priority: 5, capacity: 64, policy: 'block', deadlineMs: 100, batch: { maxSize: 4, maxWaitMs: 10 } });
  const e2e = { camera: new LatencyRecorder(), sensor: new LatencyRecorder() };
  const pending: Promise<unknown>[] = [];
  const produce = (stream: 'camera' | 'sensor', hz: number): Promise<void> => new Promise((resolve) => {
    let n = 0;
    const t0 = performance.now();
    const tick = (): void => {
      if (performance.now() - t0 >= seconds * 1000) { resolve(); return; }
      const submitted = performance.now();
      pending.push(scheduler.submit(stream, image(n++)).then((t) => t.result).then(() => e2e[stream].record(performance.now() - submitted), () => undefined));
      // Paced against the start time, so a late tick does not shift every later one.
      setTimeout(tick, Math.max(0, t0 + (n * 1000) / hz - performance.now()));
    };
    tick();
  });
  await Promise.all([produce('camera', 30), produce('sensor', 50)]);
  await Promise.all(pending);
  const snap = scheduler.snapshot();
  for (const name of ['camera', 'sensor'] as const) {
    const s = snap.streams[name]!;
    const lat = e2e[name].summary();
    const missed = s.expired + s.late + s.dropped;
    report(`${name}: submitted / completed / dropped / expired / late`, `${s.submitted}/${s.completed}/${s.dropped}/${s.expired}/${s.late}`);
    report(`${name}: end-to-end p50 / p99 ms`, `${fmt(lat.p50Ms)} / ${fmt(lat.p99Ms)}`);
    report(`${name}: service p50 ms, batches`, `${fmt(s.service.p50Ms)}, ${s.batches}`);
    report(`${name}: deadline-miss rate (dropped+expired+late)`, `${fmt((100 * missed) / Math.max(1, s.submitted), 2)} %`);
  }
  await scheduler.close();
  placer.dispose();
  for (const id of ['cnn', 'mlp']) await scheduler.model(id).dispose();
  await registry.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
