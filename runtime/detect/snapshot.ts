/**
 * Snapshots: a frame as a JPEG (jpeg-js, pure JS) with the tracked object's box drawn on it, as
 * Frigate publishes the best frame of an object.
 */
import jpeg from 'jpeg-js';
import type { Frame } from '../pipeline/frame.js';
import type { Box } from './box.js';

const BOX_COLOUR = [255, 64, 0] as const;

export function snapshotJpeg(frame: Frame, box: Box | undefined, quality = 85): Uint8Array {
  const { width, height } = frame;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = frame.channels === 1
      ? [frame.pixels[i]!, frame.pixels[i]!, frame.pixels[i]!]
      : [frame.pixels[3 * i]!, frame.pixels[3 * i + 1]!, frame.pixels[3 * i + 2]!];
    rgba[4 * i] = r;
    rgba[4 * i + 1] = g;
    rgba[4 * i + 2] = b;
    rgba[4 * i + 3] = 255;
  }
  if (box) drawBox(rgba, width, height, box);
  return new Uint8Array(jpeg.encode({ data: rgba, width, height }, quality).data);
}

function drawBox(rgba: Uint8Array, width: number, height: number, box: Box): void {
  const x1 = clamp(Math.round(box[0]), width);
  const y1 = clamp(Math.round(box[1]), height);
  const x2 = clamp(Math.round(box[2]) - 1, width);
  const y2 = clamp(Math.round(box[3]) - 1, height);
  const set = (x: number, y: number): void => {
    const o = 4 * (y * width + x);
    rgba[o] = BOX_COLOUR[0];
    rgba[o + 1] = BOX_COLOUR[1];
    rgba[o + 2] = BOX_COLOUR[2];
  };
  for (let x = x1; x <= x2; x++) { set(x, y1); set(x, y2); }
  for (let y = y1; y <= y2; y++) { set(x1, y); set(x2, y); }
}

const clamp = (v: number, n: number): number => Math.min(Math.max(v, 0), n - 1);
