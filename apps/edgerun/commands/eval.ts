import { SingleBar, Presets } from 'cli-progress';
import { parseDataset } from '../../../runtime/dataset.js';
import { evaluate, type EvalResult } from '../../../runtime/evaluate.js';
import { readFileLimited } from '../../../drivers/storage/read-file.js';
import { createRegistry, loadConfig, readModel, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';

export interface EvalOptions {
  data: string;
  backend: string;
  batch?: number;
  limit?: number;
  json?: boolean;
  progress?: boolean;
}

export async function evalCommand(path: string, opts: EvalOptions, global: GlobalOptions): Promise<EvalResult> {
  const config = await loadConfig(global, opts.batch ? { eval: { batchSize: opts.batch } } : {});
  const model = await readModel(path, config);
  const dataset = parseDataset(await readFileLimited(opts.data, 1 << 30, 'dataset'), opts.data);
  const registry = createRegistry(config);
  try {
    const prepared = await (await registry.get(opts.backend)).load(model);
    const total = Math.min(opts.limit ?? dataset.count, dataset.count);
    // A progress bar only where someone watches it: on a terminal, for runs worth waiting on.
    const bar = opts.progress !== false && process.stderr.isTTY && total >= 500
      ? new SingleBar({ stream: process.stderr, format: 'eval [{bar}] {percentage}% | {value}/{total} samples | ETA {eta}s' }, Presets.shades_classic)
      : undefined;
    bar?.start(total, 0);
    const result = await evaluate(prepared, dataset, { batchSize: config.eval.batchSize, limit: opts.limit, onProgress: (done) => bar?.update(done) });
    bar?.stop();
    await prepared.dispose();
    if (opts.json) {
      console.log(JSON.stringify({ model: path, data: opts.data, backend: opts.backend, ...result }));
    } else {
      printEval(path, opts.backend, result);
    }
    return result;
  } finally {
    await registry.dispose();
  }
}

export function printEval(path: string, backend: string, r: EvalResult): void {
  console.log(`${path} on ${backend}: accuracy ${(r.accuracy * 100).toFixed(2)}% (${r.correct}/${r.samples})`);
  console.log(formatTable(
    ['batch', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'samples/s'],
    [[r.batchSize, r.latency.p50Ms, r.latency.p90Ms, r.latency.p99Ms, r.latency.maxMs, Math.round(r.samplesPerSecond)]],
    [true, true, true, true, true, true],
  ));
}
