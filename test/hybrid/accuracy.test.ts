/**
 * Accuracy of the committed models on the emulated PCM crossbar as the devices age, against the
 * goals: within 1.0 point of digital at 1 h with GDC, within 3 points at 1 year with GDC, and a
 * clearly larger loss at 1 year without GDC. Two device instances (seeds) per model.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { accuracyOverAges, parseAges } from '../../runtime/hybrid/drift-sweep.js';
import { loadModel } from '../../runtime/model/load.js';
import { parseDataset } from '../../runtime/dataset.js';
import { evaluate } from '../../runtime/evaluate.js';

const subset = parseDataset(await readFile('models/data/fashion-mnist-test-2000.bin'), 'subset');
const digital = new DigitalBackend();
afterAll(() => digital.dispose());
const ages = parseAges('1h,1y');
const SEEDS = [0, 1];

async function meanLoss(name: string, gdc: boolean): Promise<{ digital: number; at1h: number; at1y: number }> {
  const model = loadModel(await readFile(`models/${name}.onnx`), { source: name });
  const d = await digital.load(model);
  const digitalAccuracy = (await evaluate(d, subset, { batchSize: 100 })).accuracy;
  await d.dispose();
  const sums = [0, 0];
  for (const seed of SEEDS) {
    const driver = new CrossbarEmulator('pcm', { seed, overrides: { gdc: gdc ? 'global' : 'off' } });
    const analog = new AnalogBackend({ digital, driver });
    const points = await accuracyOverAges(await analog.load(model), driver, ages, subset, { batchSize: 100, gdc });
    points.forEach((p, i) => { sums[i]! += (digitalAccuracy - p.accuracy) * 100; });
    await analog.dispose();
  }
  return { digital: digitalAccuracy, at1h: sums[0]! / SEEDS.length, at1y: sums[1]! / SEEDS.length };
}

describe.each(['mlp', 'cnn'])('%s on the pcm profile', (name) => {
  it('loses ≤ 1 point at 1 h and ≤ 3 points at 1 year with GDC; more without GDC', async () => {
    const withGdc = await meanLoss(name, true);
    expect(withGdc.at1h).toBeLessThanOrEqual(1.0);
    expect(withGdc.at1y).toBeLessThanOrEqual(3.0);
    const withoutGdc = await meanLoss(name, false);
    expect(withoutGdc.at1y).toBeGreaterThan(withGdc.at1y + 3);
  }, 300_000);
});
