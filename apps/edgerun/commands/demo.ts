/** `npm start`: evaluates the bundled models on the bundled subset and says what to try next. */
import { join, relative } from 'node:path';
import { evalCommand } from './eval.js';
import type { EvalResult } from '../../../runtime/evaluate.js';
import type { GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';
import { packageRoot } from '../package-info.js';

const repoFile = (p: string): string => relative(process.cwd(), join(packageRoot, p)) || '.';

export async function demoCommand(global: GlobalOptions): Promise<void> {
  const data = repoFile('models/data/fashion-mnist-test-2000.bin');
  console.log(`edgerun demo: Fashion-MNIST models on the digital (onnxruntime-web) backend, ${data}\n`);
  const rows: (string | number)[][] = [];
  for (const name of ['mlp', 'cnn']) {
    const model = repoFile(`models/${name}.onnx`);
    const r = await evalCommand(model, { data, backend: 'digital', batch: 1 }, global) as EvalResult;
    rows.push([name, `${(r.accuracy * 100).toFixed(2)}%`, r.latency.p50Ms, r.latency.p99Ms, Math.round(r.samplesPerSecond)]);
    console.log();
  }
  console.log(formatTable(['model', 'accuracy', 'p50 ms', 'p99 ms', 'samples/s'], rows, [false, true, true, true, true]));
  console.log(`\nNext: npx edgerun inspect ${repoFile('models/cnn.onnx')}   |   npx edgerun check ${repoFile('models/conformance/cnn')}   |   npx edgerun --help`);
}
