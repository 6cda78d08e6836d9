/** Classification accuracy, latency and throughput of a prepared model over an EDGD dataset. */
import type { PreparedModel } from './backend.js';
import { batchOf, checkLabels, type Dataset } from './dataset.js';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { allocatableCount, type TensorData } from './model/tensor.js';

export interface EvalOptions {
  /** Names the data set in errors. */
  source?: string;
  batchSize?: number;
  /** Evaluate only the first `limit` samples. */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  samples: number;
  correct: number;
  accuracy: number;
  batchSize: number;
  /** Per-batch latency (one `run` call). */
  latency: LatencySummary;
  samplesPerSecond: number;
}

export async function evaluate(prepared: PreparedModel, ds: Dataset, options: EvalOptions = {}): Promise<EvalResult> {
  const input = prepared.inputs[0];
  const output = prepared.outputs[0];
  if (!input || prepared.inputs.length !== 1 || !output) throw new Error('evaluation needs a model with one input and at least one output');
  const total = Math.min(options.limit ?? ds.count, ds.count);
  if (total === 0) checkLabels(ds, 0, options.source, 0);
  const batchSize = Math.max(1, options.batchSize ?? 1);
  const recorder = new LatencyRecorder();
  const sampleSize = ds.sampleShape[0] * ds.sampleShape[1] * ds.sampleShape[2];
  // One batch of float32 pixels, no larger than the data set: refused with its size when huge.
  const buffer = new Float32Array(allocatableCount([Math.min(batchSize, total), ...ds.sampleShape], 4, `a batch of ${options.source ?? 'the data set'}`));
  let correct = 0;
  const started = performance.now();
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const data = batchOf(ds, start, n, n * sampleSize === buffer.length ? buffer : buffer.subarray(0, n * sampleSize));
    const t0 = performance.now();
    const out = await prepared.run({ [input.name]: { type: 'float32', data, dims: [n, ...ds.sampleShape] } });
    recorder.record(performance.now() - t0);
    const scores = out[output.name]!;
    // Labels are checked against the classes the model actually outputs, before any is scored.
    if (start === 0) checkLabels(ds, scores.dims[scores.dims.length - 1] ?? 0, options.source, total);
    const predictions = argmaxRows(scores);
    for (let i = 0; i < n; i++) if (predictions[i] === ds.labels[start + i]) correct++;
    options.onProgress?.(start + n, total);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    samples: total, correct, accuracy: correct / total, batchSize,
    latency: recorder.summary(), samplesPerSecond: total / seconds,
  };
}

/** Index of the largest value in each row of a [N, C] (or [C]) tensor. */
export function argmaxRows(t: TensorData): number[] {
  const data = t.data as Float32Array;
  const classes = t.dims[t.dims.length - 1] ?? data.length;
  const rows = classes ? data.length / classes : 0;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[r * classes + c]! > data[r * classes + best]!) best = c;
    out.push(best);
  }
  return out;
}
