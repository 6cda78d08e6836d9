/**
 * Frames: what cameras (drivers/sensors) push into the detection stream, and how a frame becomes a
 * model input. Sources push; the pipeline keeps only the latest frame (a camera does not wait).
 */
import type { GroundTruth } from '../detect/mean-ap.js';

export interface Frame {
  /** Capture time, ms since the epoch. */
  t: number;
  width: number;
  height: number;
  /** 1 = grey, 3 = RGB, interleaved rows. */
  channels: 1 | 3;
  pixels: Uint8Array;
  /** Where it came from (file, frame number), for error messages. */
  origin: string;
  /** Objects in the frame, when the source knows them (the synthetic camera); `id` follows one object. */
  truth?: (GroundTruth & { id: number })[];
}

/** Where a source delivers. */
export interface FrameSink {
  frame(frame: Frame): void;
  /** A bad frame, a failed read or a dropped stream: reported, and the source carries on. */
  error(error: Error): void;
  /** The source has nothing more (a file played once, a finite scene). */
  end(): void;
}

export interface FrameSource {
  /** e.g. "synthetic", "ffmpeg:rtsp://cam/stream", "dir:/srv/images". */
  readonly description: string;
  start(sink: FrameSink): Promise<void>;
  stop(): Promise<void>;
}

/** Why a frame cannot be used; undefined when it can. */
export function frameProblem(f: Frame): string | undefined {
  if (!(f.width > 0 && f.height > 0 && Number.isInteger(f.width) && Number.isInteger(f.height))) return `${f.origin}: frame size ${f.width}×${f.height}`;
  const want = f.width * f.height * f.channels;
  if (f.pixels.length !== want) return `${f.origin}: ${f.pixels.length} bytes for a ${f.width}×${f.height}×${f.channels} frame (${want} expected)`;
  return undefined;
}

/**
 * The frame as a float32 NCHW batch of one for a model input [channels, height, width] in [0, 1]:
 * bilinear resampling to the input size (pixel centres aligned, as OpenCV's INTER_LINEAR), RGB to
 * grey by ITU-R BT.601 luma when the model takes one channel, grey repeated when it takes three.
 */
export function toModelInput(f: Frame, [channels, height, width]: readonly [number, number, number], out = new Float32Array(channels * height * width)): Float32Array {
  const grey = f.channels === 1 ? f.pixels : luma(f);
  const sx = f.width / width;
  const sy = f.height / height;
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), f.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, f.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), f.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, f.width - 1);
      const wx = fx - x0;
      const top = grey[y0 * f.width + x0]! * (1 - wx) + grey[y0 * f.width + x1]! * wx;
      const bottom = grey[y1 * f.width + x0]! * (1 - wx) + grey[y1 * f.width + x1]! * wx;
      const v = (top * (1 - wy) + bottom * wy) / 255;
      for (let c = 0; c < channels; c++) out[c * plane + y * width + x] = v;
    }
  }
  return out;
}

function luma(f: Frame): Uint8Array {
  const n = f.width * f.height;
  const g = new Uint8Array(n);
  for (let i = 0; i < n; i++) g[i] = Math.round(0.299 * f.pixels[3 * i]! + 0.587 * f.pixels[3 * i + 1]! + 0.114 * f.pixels[3 * i + 2]!);
  return g;
}
