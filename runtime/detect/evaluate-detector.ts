/** mAP@0.5 of a detector (a grid head) over a scene set, with per-call latency. */
import type { PreparedModel } from '../backend.js';
import { LatencyRecorder, type LatencySummary } from '../latency.js';
import type { Detection } from './box.js';
import { decodeGrid, type GridHead } from './grid-head.js';
import { meanAveragePrecision, type MeanAp } from './mean-ap.js';
import { nonMaxSuppression } from './nms.js';
import type { SceneSet } from './scene-set.js';

export interface DetectorEvalOptions {
  /** Low, as mAP ranks every detection (VOC and COCO evaluations keep nearly all). */
  scoreThreshold?: number;
  nmsIou?: number;
  batchSize?: number;
  limit?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface DetectorEvalResult {
  scenes: number;
  map: MeanAp;
  /** Per `run` call. */
  latency: LatencySummary;
  scenesPerSecond: number;
}

const EVAL_SCORE_THRESHOLD = 0.05;

export async function evaluateDetector(model: PreparedModel, scenes: SceneSet, head: GridHead, o: DetectorEvalOptions = {}): Promise<DetectorEvalResult> {
  const input = model.inputs[0];
  const output = model.outputs[0];
  if (!input || !output) throw new Error('a detector needs one input and one output');
  const [c, h, w] = head.input;
  const [sc, sh, sw] = scenes.sceneShape;
  if (sc !== c || sh !== h || sw !== w) throw new Error(`scenes are ${sc}×${sh}×${sw}, the detector takes ${c}×${h}×${w}`);
  const total = Math.min(o.limit ?? scenes.count, scenes.count);
  const batch = Math.max(1, o.batchSize ?? 1);
  const size = c * h * w;
  const recorder = new LatencyRecorder();
  const detections: Detection[][] = [];
  const started = performance.now();
  for (let start = 0; start < total; start += batch) {
    const n = Math.min(batch, total - start);
    const data = new Float32Array(n * size);
    const src = scenes.pixels.subarray(start * size, (start + n) * size);
    for (let i = 0; i < src.length; i++) data[i] = src[i]! / 255;
    const t0 = performance.now();
    const out = (await model.run({ [input.name]: { type: 'float32', data, dims: [n, c, h, w] } }))[output.name]!;
    recorder.record(performance.now() - t0);
    const per = out.data.length / n;
    for (let i = 0; i < n; i++) {
      const item = { data: (out.data as Float32Array).subarray(i * per, (i + 1) * per), dims: [1, ...out.dims.slice(1)] };
      detections.push(nonMaxSuppression(decodeGrid(head, item, { scoreThreshold: o.scoreThreshold ?? EVAL_SCORE_THRESHOLD }), o.nmsIou ?? 0.45));
    }
    o.onProgress?.(start + n, total);
  }
  return {
    scenes: total, map: meanAveragePrecision(detections, scenes.truth.slice(0, total)), latency: recorder.summary(),
    scenesPerSecond: total / ((performance.now() - started) / 1000),
  };
}
