/**
 * The canary check: the same small labelled-or-not input set run on the accelerator and on the
 * digital reference, compared by top-1 agreement (do they pick the same class?) and by the mean
 * cosine similarity of the output vectors (how close the scores are, before argmax hides it).
 */
import { batchOf, type Dataset } from '../dataset.js';
import type { Feeds } from '../model/feeds.js';
import type { TensorData } from '../model/tensor.js';

export interface CanaryFigures {
  /** Fraction of canary inputs where both pick the same class. */
  agreement: number;
  /** Mean over inputs of cos(accelerator output, reference output). */
  cosine: number;
}

/** The whole canary set as one batch for a model with a single image input. */
export function canaryFeeds(canary: Dataset, inputName: string): Feeds {
  return { [inputName]: { type: 'float32', data: batchOf(canary, 0, canary.count), dims: [canary.count, ...canary.sampleShape] } };
}

/** Compares two [N, C] outputs row by row. */
export function compareOutputs(reference: TensorData, candidate: TensorData): CanaryFigures {
  const r = reference.data as Float32Array;
  const c = candidate.data as Float32Array;
  if (r.length !== c.length || r.length === 0) throw new Error(`canary outputs differ in size (${r.length} vs ${c.length})`);
  const classes = reference.dims[reference.dims.length - 1] ?? r.length;
  const rows = r.length / classes;
  let agree = 0;
  let cosine = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * classes;
    let br = 0;
    let bc = 0;
    let dot = 0;
    let nr = 0;
    let nc = 0;
    for (let k = 0; k < classes; k++) {
      const a = r[o + k]!;
      const b = c[o + k]!;
      if (a > r[o + br]!) br = k;
      if (b > c[o + bc]!) bc = k;
      dot += a * b;
      nr += a * a;
      nc += b * b;
    }
    if (br === bc) agree++;
    cosine += nr > 0 && nc > 0 ? dot / Math.sqrt(nr * nc) : nr === nc ? 1 : 0;
  }
  return { agreement: agree / rows, cosine: Number.isFinite(cosine) ? cosine / rows : 0 };
}

/** Relative L2 error ‖candidate − reference‖ / ‖reference‖ (for ranking layers). */
export function relativeError(reference: ArrayLike<number>, candidate: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = candidate[i]! - reference[i]!;
    num += d * d;
    den += reference[i]! * reference[i]!;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}
