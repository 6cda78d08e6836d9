/**
 * Decoding of a single-shot grid head (YOLO v1/v2-like, one box per cell), the layout of
 * models/detector.onnx: output [N, 5 + C, H/stride, W/stride] with, per cell, the channels
 * [objectness, tx, ty, tw, th, class logits × C]:
 *
 *   cx = (col + sigmoid(tx)) · stride     w = anchorW · exp(tw)
 *   cy = (row + sigmoid(ty)) · stride     h = anchorH · exp(th)
 *   score(class c) = sigmoid(objectness) · softmax(class logits)[c]
 *
 * The head's parameters travel with the model as ONNX metadata_props (edgerun.head = grid-yolo,
 * edgerun.labels, edgerun.stride, edgerun.anchor), so another detector of this layout needs no code.
 */
import type { LoadedModel } from '../model/load.js';
import type { Box, Detection } from './box.js';

export interface GridHead {
  labels: string[];
  /** Input pixels per grid cell. */
  stride: number;
  /** Box prior in input pixels [w, h]. */
  anchor: [number, number];
  /** Model input [channels, height, width]. */
  input: [number, number, number];
}

/** exp(tw) is capped: an untrained or corrupted output must not make boxes of infinite size. */
const MAX_LOG_SCALE = 4;

export function gridHeadOf(model: LoadedModel): GridHead {
  const meta = new Map((model.proto.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const where = `${model.source}: not a grid-head detector`;
  if (meta.get('edgerun.head') !== 'grid-yolo') throw new Error(`${where} (metadata edgerun.head is ${JSON.stringify(meta.get('edgerun.head') ?? null)}, expected "grid-yolo")`);
  const labels = (meta.get('edgerun.labels') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const stride = Number(meta.get('edgerun.stride'));
  const anchor = (meta.get('edgerun.anchor') ?? '').split(',').map(Number);
  if (labels.length === 0) throw new Error(`${where}: metadata edgerun.labels is empty`);
  if (!(Number.isInteger(stride) && stride > 0)) throw new Error(`${where}: metadata edgerun.stride must be a positive integer`);
  if (anchor.length !== 2 || !anchor.every((a) => Number.isFinite(a) && a > 0)) throw new Error(`${where}: metadata edgerun.anchor must be "w,h" in pixels`);
  const dims = model.inputs[0]?.dims ?? [];
  const [c, h, w] = dims.slice(1);
  if (dims.length !== 4 || typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number') {
    throw new Error(`${model.source}: a detector needs one input [N, C, H, W] with fixed C, H, W (got [${dims.join(', ')}])`);
  }
  if (h % stride || w % stride) throw new Error(`${model.source}: input ${w}×${h} is not a multiple of the stride ${stride}`);
  return { labels, stride, anchor: [anchor[0]!, anchor[1]!], input: [c, h, w] };
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export interface DecodeOptions {
  /** Detections below this score are not returned. */
  scoreThreshold: number;
  /** Multiplies input pixel coordinates into frame pixels (frame width / input width, height likewise). */
  scale?: [number, number];
}

/** Detections of batch item 0 of a grid-head output (before NMS), boxes clipped to the frame. */
export function decodeGrid(head: GridHead, output: { data: ArrayLike<number>; dims: readonly number[] }, opts: DecodeOptions): Detection[] {
  const [, h, w] = head.input;
  const rows = h / head.stride;
  const cols = w / head.stride;
  const classes = head.labels.length;
  const d = output.dims;
  if (d.length !== 4 || d[1] !== 5 + classes || d[2] !== rows || d[3] !== cols) {
    throw new Error(`detector output [${d.join(', ')}] does not match its head: expected [N, ${5 + classes}, ${rows}, ${cols}]`);
  }
  const [sx, sy] = opts.scale ?? [1, 1];
  const plane = rows * cols;
  const x = output.data;
  const out: Detection[] = [];
  const probs = new Float64Array(classes);
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) {
      const cell = r * cols + col;
      const objectness = sigmoid(x[cell]!);
      if (objectness < opts.scoreThreshold) continue; // every class score is below it too
      let max = -Infinity;
      for (let k = 0; k < classes; k++) max = Math.max(max, x[(5 + k) * plane + cell]!);
      let z = 0;
      for (let k = 0; k < classes; k++) z += probs[k] = Math.exp(x[(5 + k) * plane + cell]! - max);
      const cx = (col + sigmoid(x[plane + cell]!)) * head.stride;
      const cy = (r + sigmoid(x[2 * plane + cell]!)) * head.stride;
      const bw = head.anchor[0] * Math.exp(Math.min(x[3 * plane + cell]!, MAX_LOG_SCALE));
      const bh = head.anchor[1] * Math.exp(Math.min(x[4 * plane + cell]!, MAX_LOG_SCALE));
      const box: Box = [
        Math.max(0, cx - bw / 2) * sx, Math.max(0, cy - bh / 2) * sy,
        Math.min(w, cx + bw / 2) * sx, Math.min(h, cy + bh / 2) * sy,
      ];
      for (let k = 0; k < classes; k++) {
        const score = objectness * probs[k]! / z;
        if (score >= opts.scoreThreshold) out.push({ label: head.labels[k]!, score, box });
      }
    }
  }
  return out;
}
