/**
 * Class-wise non-maximum suppression (greedy, as in Faster R-CNN / YOLO post-processing): within
 * each label, boxes are taken by descending score and a box is dropped when it overlaps an already
 * kept one by more than `iouThreshold`. Boxes of different labels never suppress each other.
 */
import { iou, type Detection } from './box.js';

export function nonMaxSuppression<D extends Detection>(detections: readonly D[], iouThreshold: number): D[] {
  const byLabel = new Map<string, D[]>();
  for (const d of detections) {
    const list = byLabel.get(d.label);
    if (list) list.push(d);
    else byLabel.set(d.label, [d]);
  }
  const kept: D[] = [];
  for (const list of byLabel.values()) {
    list.sort((a, b) => b.score - a.score);
    const mine: D[] = [];
    for (const d of list) if (mine.every((k) => iou(k.box, d.box) <= iouThreshold)) mine.push(d);
    kept.push(...mine);
  }
  return kept.sort((a, b) => b.score - a.score);
}
