/** Frames: resampling to a model input on hand-computed cases, the frame check, the synthetic camera's determinism and truth. */
import { describe, expect, it } from 'vitest';
import { frameProblem, toModelInput, type Frame } from '../../runtime/pipeline/frame.js';
import { SyntheticCamera } from '../../drivers/sensors/synthetic-camera.js';
import { decodeImage } from '../../drivers/sensors/image-directory-source.js';
import { sprites } from './helpers.js';

const grey = (width: number, height: number, values: number[]): Frame => ({ t: 0, width, height, channels: 1, pixels: Uint8Array.from(values), origin: 'test' });

describe('toModelInput', () => {
  it('halves a frame by averaging 2×2 blocks (bilinear, centres aligned) and scales to [0, 1]', () => {
    const f = grey(4, 2, [0, 255, 51, 51, 255, 0, 102, 102]);
    // Output pixel x samples at (x + 0.5)·2 − 0.5 = 0.5 and 2.5: the mean of columns 0–1 and 2–3 over both rows.
    expect(Array.from(toModelInput(f, [1, 1, 2]))).toEqual([0.5, 0.3].map((v) => expect.closeTo(v, 6)));
  });

  it('takes luma of RGB (BT.601) and repeats grey over three channels', () => {
    const rgb: Frame = { t: 0, width: 1, height: 1, channels: 3, pixels: Uint8Array.from([255, 0, 0]), origin: 'red' };
    expect(toModelInput(rgb, [1, 1, 1])[0]).toBeCloseTo(76 / 255, 6); // round(0.299 · 255)
    expect(Array.from(toModelInput(grey(1, 1, [51]), [3, 1, 1]))).toEqual([0.2, 0.2, 0.2].map((v) => expect.closeTo(v, 6)));
  });

  it('a frame whose bytes do not match its size is named as a problem', () => {
    expect(frameProblem(grey(2, 2, [1, 2, 3]))).toBe('test: 3 bytes for a 2×2×1 frame (4 expected)');
    expect(frameProblem(grey(0, 2, []))).toBe('test: frame size 0×2');
    expect(frameProblem(grey(2, 2, [1, 2, 3, 4]))).toBeUndefined();
  });

  it('an unreadable image file is a one-line error naming the file', () => {
    expect(() => decodeImage(Uint8Array.from([0x89, 0x50, 1, 2, 3]), 'x.png')).toThrow(/^x\.png: not a readable image \(/);
    expect(() => decodeImage(Uint8Array.from([1, 2, 3]), 'y.jpg')).toThrow('y.jpg: not a readable image (neither PNG nor JPEG)');
  });
});

describe('synthetic camera', () => {
  it('is deterministic per seed, keeps truth boxes inside the frame, and its objects move', () => {
    const a = new SyntheticCamera({ sprites, width: 128, height: 96, seed: 4, startMs: 0 });
    const b = new SyntheticCamera({ sprites, width: 128, height: 96, seed: 4, startMs: 0 });
    const c = new SyntheticCamera({ sprites, width: 128, height: 96, seed: 5, startMs: 0 });
    const fa = Array.from({ length: 30 }, () => a.render());
    const fb = Array.from({ length: 30 }, () => b.render());
    expect(fa.map((f) => Buffer.from(f.pixels).toString('base64'))).toEqual(fb.map((f) => Buffer.from(f.pixels).toString('base64')));
    expect(Buffer.from(c.render().pixels).equals(Buffer.from(fa[0]!.pixels))).toBe(false);
    expect(fa[10]!.t).toBe(1000); // 10 fps
    for (const f of fa) {
      expect(f.truth!.length).toBeGreaterThan(0);
      for (const t of f.truth!) {
        expect(['top', 'trouser', 'dress', 'footwear', 'bag']).toContain(t.label);
        expect(t.box[0]).toBeGreaterThanOrEqual(0);
        expect(t.box[1]).toBeGreaterThanOrEqual(0);
        expect(t.box[2]).toBeLessThanOrEqual(128);
        expect(t.box[3]).toBeLessThanOrEqual(96);
      }
    }
    const first = fa[0]!.truth![0]!;
    const later = fa[5]!.truth!.find((t) => t.id === first.id);
    expect(later).toBeDefined();
    expect(later!.box).not.toEqual(first.box);
  });
});
