/** edgerun's digital backend vs a bare onnxruntime-web session.run, same model and inputs. */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-web';
import { loadModel } from '../runtime/model/load.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { compare, fmt, report } from './measure.js';

export async function main(): Promise<void> {
  console.log('\n# runtime overhead: edgerun digital run vs bare onnxruntime-web session.run (batch 1)');
  const backend = new DigitalBackend({ threads: 1 });
  for (const name of ['mlp', 'cnn']) {
    const bytes = await readFile(new URL(`../models/${name}.onnx`, import.meta.url));
    const model = loadModel(bytes, { source: name });
    const prepared = await backend.load(model);
    const bare = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const input = model.inputs[0]!;
    const data = Float32Array.from({ length: 784 }, (_, i) => (i % 17) / 17);
    const dims = [1, 1, 28, 28];
    const tensor = new ort.Tensor('float32', data, dims);
    const r = await compare({
      baseline: () => bare.run({ [input.name]: tensor }),
      candidate: () => prepared.run({ [input.name]: { type: 'float32', data, dims } }),
    }, 15, name === 'mlp' ? 400 : 100);
    report(`${name}: bare ort µs/inference`, fmt(r.baselineUs, 1));
    report(`${name}: edgerun µs/inference`, fmt(r.candidateUs, 1));
    report(`${name}: edgerun / bare`, `${fmt(r.ratio, 3)}×`, { text: '≤ 1.05×', met: r.ratio <= 1.05 });
    await prepared.dispose();
    await bare.release();
  }
  await backend.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
