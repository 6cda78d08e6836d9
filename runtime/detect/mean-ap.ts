/**
 * Mean average precision at an IoU threshold, PASCAL VOC 2010+ style: per label, detections of all
 * images ranked by score; a detection is a true positive when it overlaps a not yet matched ground
 * truth box of its label and image by at least the threshold (the best-overlapping one), else a
 * false positive (including a second detection of a matched object). AP is the area under the
 * precision–recall curve with all-point interpolation (precision made monotone from the right,
 * summed at every recall step). mAP is the mean over labels that have ground truth.
 */
import { iou, type Box, type Detection } from './box.js';

export interface GroundTruth {
  label: string;
  box: Box;
}

export interface LabelAp {
  label: string;
  ap: number;
  /** Ground-truth objects of the label. */
  positives: number;
  detections: number;
}

export interface MeanAp {
  map: number;
  iouThreshold: number;
  perLabel: LabelAp[];
}

/** `detections[i]` and `truth[i]` belong to image i. */
export function meanAveragePrecision(detections: readonly (readonly Detection[])[], truth: readonly (readonly GroundTruth[])[], iouThreshold = 0.5): MeanAp {
  if (detections.length !== truth.length) throw new Error(`mAP: ${detections.length} images of detections but ${truth.length} of ground truth`);
  const labels = [...new Set(truth.flatMap((t) => t.map((g) => g.label)))].sort();
  const perLabel = labels.map((label) => averagePrecision(label, detections, truth, iouThreshold));
  const map = perLabel.length ? perLabel.reduce((s, l) => s + l.ap, 0) / perLabel.length : 0;
  return { map, iouThreshold, perLabel };
}

function averagePrecision(label: string, detections: readonly (readonly Detection[])[], truth: readonly (readonly GroundTruth[])[], threshold: number): LabelAp {
  const gts = truth.map((t) => t.filter((g) => g.label === label).map((g) => g.box));
  const matched = gts.map((g) => g.map(() => false));
  const positives = gts.reduce((s, g) => s + g.length, 0);
  const ranked = detections.flatMap((ds, image) => ds.filter((d) => d.label === label).map((d) => ({ image, d })));
  ranked.sort((a, b) => b.d.score - a.d.score);
  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  ranked.forEach(({ image, d }, i) => {
    let best = -1;
    let bestIou = 0;
    gts[image]!.forEach((g, j) => {
      const o = iou(d.box, g);
      if (o > bestIou) { bestIou = o; best = j; }
    });
    if (best >= 0 && bestIou >= threshold && !matched[image]![best]) {
      matched[image]![best] = true;
      tp++;
    }
    recall.push(tp / positives);
    precision.push(tp / (i + 1));
  });
  // All-point interpolation: p_interp(r) = max precision at recall ≥ r.
  for (let i = precision.length - 2; i >= 0; i--) precision[i] = Math.max(precision[i]!, precision[i + 1]!);
  let ap = 0;
  let prevRecall = 0;
  for (let i = 0; i < recall.length; i++) {
    if (recall[i]! > prevRecall) {
      ap += (recall[i]! - prevRecall) * precision[i]!;
      prevRecall = recall[i]!;
    }
  }
  return { label, ap, positives, detections: ranked.length };
}
