/**
 * Evaluation sets in the EDGD format (models/README.md): a 24-byte little-endian header
 * ("EDGD", version 1, count, channels, height, width), `count` uint8 labels, then the uint8 pixels
 * of every image in NCHW order. Pixels are scaled to [0, 1] when a batch is taken.
 */
export interface Dataset {
  count: number;
  /** Per-sample shape, e.g. [1, 28, 28]. */
  sampleShape: [number, number, number];
  labels: Uint8Array;
  pixels: Uint8Array;
}

const MAGIC = 'EDGD';
const HEADER_BYTES = 24;

/** A data set refused: not EDGD, inconsistent, empty, or labels the model cannot have. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}

export function parseDataset(bytes: Uint8Array, source = 'dataset'): Dataset {
  if (bytes.length < HEADER_BYTES || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) {
    throw new DatasetError(`${source}: not an EDGD dataset (expected the magic bytes "${MAGIC}")`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [version, count, channels, height, width] = [4, 8, 12, 16, 20].map((o) => view.getUint32(o, true)) as [number, number, number, number, number];
  if (version !== 1) throw new DatasetError(`${source}: unsupported EDGD version ${version}`);
  if (channels === 0 || height === 0 || width === 0) throw new DatasetError(`${source}: samples of ${channels}×${height}×${width} hold no pixels`);
  const sampleSize = channels * height * width;
  const expected = HEADER_BYTES + count + count * sampleSize;
  if (bytes.length !== expected) {
    throw new DatasetError(`${source}: ${bytes.length} bytes, but a header of ${count} samples of ${channels}×${height}×${width} needs ${expected}`);
  }
  return {
    count,
    sampleShape: [channels, height, width],
    labels: bytes.subarray(HEADER_BYTES, HEADER_BYTES + count),
    pixels: bytes.subarray(HEADER_BYTES + count),
  };
}

/** Refuses a data set evaluation cannot score: no samples, or labels outside the model's classes. */
export function checkLabels(ds: Dataset, classes: number, source = 'dataset', samples = ds.count): void {
  if (samples === 0) throw new DatasetError(`${source}: the data set is empty (0 samples)`);
  for (let i = 0; i < samples; i++) {
    const label = ds.labels[i]!;
    if (label >= classes) {
      throw new DatasetError(`${source}: sample ${i} has label ${label}, but the model has ${classes} classes (0–${classes - 1}); is this data set for another model?`);
    }
  }
}

/** Samples [start, start+n) as float32 NCHW in [0, 1], written into `out` when given. */
export function batchOf(ds: Dataset, start: number, n: number, out?: Float32Array): Float32Array {
  const size = ds.sampleShape[0] * ds.sampleShape[1] * ds.sampleShape[2];
  const dst = out ?? new Float32Array(n * size);
  const src = ds.pixels.subarray(start * size, (start + n) * size);
  for (let i = 0; i < src.length; i++) dst[i] = src[i]! / 255;
  return dst;
}
