/**
 * Analog-emulated inference (hybrid plan on the crossbar emulator, its digital periphery on and
 * off) vs digital onnxruntime-web on the same model and inputs, batch 1, side by side, for the two
 * trained models and a zoo-scale ResNet; and raw MVMs/s of one 256×256 tile. Inputs are
 * the first 64 Fashion-MNIST test images in turn, as a device sees them: how many pixels are zero
 * and how often bound management repeats a conversion depend on the data.
 *
 * Each ratio is also given over CPU time (process.cpuUsage per round): on a machine shared with
 * other jobs that one moves far less than the wall-clock ratio.
 *
 * EDGERUN_BENCH_BASELINE=<another edgerun checkout, e.g. the commit before a change>: also times
 * that checkout's hybrid backend and emulator against this tree's on the trained models, in the
 * same process and alternating rounds, so a shared, noisy machine affects both alike.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadModel, type LoadedModel } from '../runtime/model/load.js';
import { parseTensorFile } from '../runtime/model/tensor.js';
import type { Feeds } from '../runtime/model/feeds.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { Random } from '../drivers/crossbar/random.js';
import { parseDataset, batchOf } from '../runtime/dataset.js';
import { compare, fmt, report } from './measure.js';

const IMAGES = 64;

/** A feeds function that returns the next of the first IMAGES test images on every call. */
function imageFeeds(pixels: Float32Array): () => Feeds {
  const feeds = Array.from({ length: IMAGES }, (_, i): Feeds => ({ input: { type: 'float32', data: pixels.subarray(i * 784, (i + 1) * 784), dims: [1, 1, 28, 28] } }));
  let next = 0;
  return () => feeds[next++ % IMAGES]!;
}

export async function main(): Promise<void> {
  console.log('\n# analog emulation: hybrid analog inference vs digital onnxruntime-web (batch 1), digital periphery on / off');
  const digital = new DigitalBackend();
  const rng = new Random(5);
  const dataset = parseDataset(await readFile(new URL('../models/data/fashion-mnist-test-2000.bin', import.meta.url)));
  const pixels = batchOf(dataset, 0, IMAGES);
  for (const name of ['mlp', 'cnn']) {
    const model = loadModel(await readFile(new URL(`../models/${name}.onnx`, import.meta.url)), { source: name });
    await sideBySide(digital, model, name, () => imageFeeds(pixels), name === 'mlp' ? 192 : 128);
  }
  const baseline = process.env.EDGERUN_BENCH_BASELINE;
  if (baseline) await againstBaseline(baseline, digital, pixels);
  // A zoo-scale model: the torch-zoo ResNet of models/conformance (stem, SE blocks, BatchNorm as Mul/Add), on its test input.
  const zoo = new URL('../models/conformance/torch-zoo-resnet/', import.meta.url);
  const input = parseTensorFile(await readFile(new URL('test_data_set_0/input_0.pb', zoo)), 'zoo input');
  const resnet = loadModel(await readFile(new URL('model.onnx', zoo)), { source: 'torch-zoo-resnet' });
  await sideBySide(digital, resnet, 'zoo resnet', () => () => ({ [resnet.inputs[0]!.name]: input }), 16, false);
  await digital.dispose();

  console.log('\n# one 256×256 tile: MVMs per second');
  const w = Float32Array.from({ length: 256 * 256 }, () => rng.normal() * 0.1);
  for (const profile of ['ideal', 'pcm']) {
    const emu = new CrossbarEmulator(profile, { seed: 1 });
    await emu.program(0, w, 256, 256);
    for (const batch of [1, 64]) {
      const x = Float32Array.from({ length: 256 * batch }, () => Math.max(0, rng.normal()));
      const calls = batch === 1 ? 4000 : 100;
      for (let i = 0; i < calls / 10; i++) await emu.mvm(0, x, batch);
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await emu.mvm(0, x, batch);
      const rate = (calls * batch) / ((performance.now() - t0) / 1000);
      report(`${profile} tile, batch ${batch}: MVM/s`, fmt(rate, 0));
    }
  }
}

/** analog / digital on ideal and pcm, with the periphery on and off: each analog variant timed in rounds alternating with digital. */
async function sideBySide(digital: DigitalBackend, model: LoadedModel, name: string, feeds: () => () => Feeds, perRound: number, goal = true): Promise<void> {
  const d = await digital.load(model);
  for (const profile of ['ideal', 'pcm']) {
    for (const periphery of [true, false]) {
      const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile, { seed: 1 }), periphery });
      const a = await analog.load(model);
      const digitalFeeds = feeds();
      const analogFeeds = feeds();
      const r = await compare({ baseline: () => d.run(digitalFeeds()), candidate: () => a.run(analogFeeds()) }, 11, perRound, perRound);
      const label = `${name} ${profile}, periphery ${periphery ? 'on' : 'off'}`;
      report(`${label}: digital µs / analog µs`, `${fmt(r.baselineUs, 0)} / ${fmt(r.candidateUs, 0)}`);
      report(`${label}: analog / digital`, `${fmt(r.ratio)}×`, goal && periphery ? { text: '≤ 2×', met: r.ratio <= 2 } : undefined);
      report(`${label}: analog / digital, CPU time`, `${fmt(r.cpuRatio)}×`);
      await analog.dispose();
    }
  }
  await d.dispose();
}

/** The analog backend and emulator of another checkout (same constructor shapes as this tree's). */
async function baselineParts(dir: string): Promise<{ Backend: typeof AnalogBackend; Emulator: typeof CrossbarEmulator }> {
  const from = (file: string): string => pathToFileURL(join(dir, file)).href;
  const { AnalogBackend: Backend } = (await import(from('runtime/hybrid/analog-backend.ts'))) as { AnalogBackend: typeof AnalogBackend };
  const { CrossbarEmulator: Emulator } = (await import(from('drivers/crossbar/emulator.ts'))) as { CrossbarEmulator: typeof CrossbarEmulator };
  return { Backend, Emulator };
}

/** This tree's analog inference and the baseline checkout's, each against digital and against each other, periphery on. */
async function againstBaseline(dir: string, digital: DigitalBackend, pixels: Float32Array): Promise<void> {
  console.log(`\n# analog inference, this tree vs the baseline checkout ${dir} (same process, alternating rounds, periphery on)`);
  const { Backend, Emulator } = await baselineParts(dir);
  for (const name of ['mlp', 'cnn']) {
    const model = loadModel(await readFile(new URL(`../models/${name}.onnx`, import.meta.url)), { source: name });
    const d = await digital.load(model);
    for (const profile of ['ideal', 'pcm']) {
      const before = new Backend({ digital, driver: new Emulator(profile, { seed: 1 }) });
      const after = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile, { seed: 1 }) });
      const [b, a] = [await before.load(model), await after.load(model)];
      const feeds = { d: imageFeeds(pixels), b: imageFeeds(pixels), a: imageFeeds(pixels) };
      const perRound = name === 'mlp' ? 192 : 96;
      const runD = (): Promise<unknown> => d.run(feeds.d());
      const runB = (): Promise<unknown> => b.run(feeds.b());
      const runA = (): Promise<unknown> => a.run(feeds.a());
      const vsBefore = await compare({ baseline: runB, candidate: runA }, 11, perRound, perRound);
      const beforeVsDigital = await compare({ baseline: runD, candidate: runB }, 7, perRound, perRound);
      const afterVsDigital = await compare({ baseline: runD, candidate: runA }, 7, perRound, perRound);
      const label = `${name} ${profile}`;
      report(`${label}: baseline analog / digital`, `${fmt(beforeVsDigital.ratio)}×`);
      report(`${label}: this tree's analog / digital`, `${fmt(afterVsDigital.ratio)}×`);
      report(`${label}: this tree / baseline (analog µs)`, `${fmt(vsBefore.ratio)}× (${fmt(vsBefore.candidateUs, 0)} / ${fmt(vsBefore.baselineUs, 0)})`);
      report(`${label}: this tree / baseline, CPU time`, `${fmt(vsBefore.cpuRatio)}×`);
      report(`${label}: analog / digital, CPU time: baseline / this tree`, `${fmt(beforeVsDigital.cpuRatio)}× / ${fmt(afterVsDigital.cpuRatio)}×`);
      await Promise.all([before.dispose(), after.dispose()]);
    }
    await d.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
