/** Axis-aligned boxes in frame pixels, [x1, y1, x2, y2] with x to the right and y down (Frigate's order). */
export type Box = [number, number, number, number];

export function boxArea(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** Intersection over union; 0 when either box is empty. */
export function iou(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** A detected object: which label, how sure, where. */
export interface Detection {
  label: string;
  score: number;
  box: Box;
}
