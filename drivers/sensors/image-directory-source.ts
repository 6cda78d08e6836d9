/**
 * Frames from a directory of PNG and JPEG files (pngjs, jpeg-js: pure JS, nothing native), in name
 * order, at `fps`: a camera that uploads stills, a folder of test shots. A file that is not a
 * readable image is reported as an error and skipped; the stream goes on with the next one.
 */
import { readdir } from 'node:fs/promises';
import { FILE_LIMITS, readFileLimited } from '../storage/read-file.js';
import { extname, join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import type { Frame, FrameSink, FrameSource } from '../../runtime/pipeline/frame.js';

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);
/** Refuse images whose decoded size would exceed this (a hostile header can claim gigapixels). */
const MAX_MEGAPIXELS = 64;

export interface ImageDirectorySourceOptions {
  dir: string;
  fps?: number;
  /** Start again at the first file after the last. Default false: the source ends. */
  loop?: boolean;
}

export class ImageDirectorySource implements FrameSource {
  readonly description: string;
  readonly #o: Required<ImageDirectorySourceOptions>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(o: ImageDirectorySourceOptions) {
    this.#o = { fps: 2, loop: false, ...o };
    if (!(this.#o.fps > 0)) throw new Error(`image directory source: fps must be > 0 (got ${this.#o.fps})`);
    this.description = `dir:${o.dir}`;
  }

  async start(sink: FrameSink): Promise<void> {
    const entries = await readdir(this.#o.dir).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`image directory ${this.#o.dir}: ${e.code === 'ENOENT' ? 'does not exist' : e.code === 'ENOTDIR' ? 'is not a directory' : e.message}`);
    });
    const files = entries.filter((f) => EXTENSIONS.has(extname(f).toLowerCase())).sort();
    if (files.length === 0) throw new Error(`${this.#o.dir}: no .png, .jpg or .jpeg files`);
    this.#stopped = false;
    let i = 0;
    const tick = async (): Promise<void> => {
      if (this.#stopped) return;
      if (i >= files.length) {
        if (!this.#o.loop) return sink.end();
        i = 0;
      }
      const file = join(this.#o.dir, files[i++]!);
      try {
        sink.frame(decodeImage(await readFileLimited(file, FILE_LIMITS.json, 'image'), file));
      } catch (e) {
        sink.error(e as Error);
      }
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), 1000 / this.#o.fps);
    };
    this.#timer = setTimeout(() => void tick(), 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** A PNG or JPEG file as an RGB frame (alpha dropped); throws a one-line error for anything else. */
export function decodeImage(bytes: Uint8Array, origin: string): Frame {
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) rgba = PNG.sync.read(Buffer.from(bytes));
    else if (bytes[0] === 0xff && bytes[1] === 0xd8) rgba = jpeg.decode(bytes, { useTArray: true, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 512 });
    else throw new Error('neither PNG nor JPEG');
  } catch (e) {
    throw new Error(`${origin}: not a readable image (${(e as Error).message})`);
  }
  const n = rgba.width * rgba.height;
  const pixels = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    pixels[3 * i] = rgba.data[4 * i]!;
    pixels[3 * i + 1] = rgba.data[4 * i + 1]!;
    pixels[3 * i + 2] = rgba.data[4 * i + 2]!;
  }
  return { t: Date.now(), width: rgba.width, height: rgba.height, channels: 3, pixels, origin };
}
