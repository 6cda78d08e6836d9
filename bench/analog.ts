/**
 * Analog-emulated inference (hybrid plan on the crossbar emulator) vs digital onnxruntime-web on
 * the same model and inputs, batch 1, side by side; and raw MVMs/s of one 256×256 tile. Inputs are
 * the first 64 Fashion-MNIST test images in turn, as a device sees them: how many pixels are zero
 * and how often bound management repeats a conversion depend on the data.
 */
import { readFile } from 'node:fs/promises';
import { loadModel } from '../runtime/model/load.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { Random } from '../drivers/crossbar/random.js';
import { parseDataset, batchOf } from '../runtime/dataset.js';
import { compare, fmt, report } from './measure.js';

const IMAGES = 64;

/** A feeds function that returns the next of the first IMAGES test images on every call. */
function imageFeeds(pixels: Float32Array): () => { input: { type: string; data: Float32Array; dims: number[] } } {
  const feeds = Array.from({ length: IMAGES }, (_, i) => ({ input: { type: 'float32', data: pixels.subarray(i * 784, (i + 1) * 784), dims: [1, 1, 28, 28] } }));
  let next = 0;
  return () => feeds[next++ % IMAGES]!;
}

export async function main(): Promise<void> {
  console.log('\n# analog emulation: hybrid analog inference vs digital onnxruntime-web (batch 1)');
  const digital = new DigitalBackend();
  const rng = new Random(5);
  const dataset = parseDataset(await readFile(new URL('../models/data/fashion-mnist-test-2000.bin', import.meta.url)));
  const pixels = batchOf(dataset, 0, IMAGES);
  for (const name of ['mlp', 'cnn']) {
    const model = loadModel(await readFile(new URL(`../models/${name}.onnx`, import.meta.url)), { source: name });
    const d = await digital.load(model);
    for (const profile of ['ideal', 'pcm']) {
      const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile, { seed: 1 }) });
      const a = await analog.load(model);
      const digitalFeeds = imageFeeds(pixels);
      const analogFeeds = imageFeeds(pixels);
      const r = await compare({ baseline: () => d.run(digitalFeeds()), candidate: () => a.run(analogFeeds()) }, 11, name === 'mlp' ? 192 : 128, 128);
      report(`${name} ${profile}: digital µs / analog µs`, `${fmt(r.baselineUs, 0)} / ${fmt(r.candidateUs, 0)}`);
      report(`${name} ${profile}: analog / digital`, `${fmt(r.ratio)}×`, { text: '≤ 2×', met: r.ratio <= 2 });
      await analog.dispose();
    }
    await d.dispose();
  }
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

if (import.meta.url === `file://${process.argv[1]}`) await main();
