/**
 * A synthetic camera: moving scenes of the kind the detector was trained on (models/
 * train_detector.py's render(), ported) — a background with a gradient and clutter, Fashion-MNIST
 * items at 20–40 px (per 96 px of frame) drifting across it, entering and leaving, brightness and
 * contrast that change slowly, sensor noise — at any size and frame rate, with the ground truth of
 * every frame attached. Seeded: the same options give the same frames.
 *
 * Sprites come from an EDGD set of 28×28 Fashion-MNIST items (models/data/fashion-mnist-test-2000.bin,
 * test-set items the detector never saw); their classes map to the detector's labels.
 *
 *   const cam = new SyntheticCamera({ sprites, width: 96, height: 96, fps: 10, seed: 1 });
 *   const f = cam.render();          // the next frame, synchronously (eval, benches, video files)
 *   await cam.start(sink);           // or pushed at `fps` to a sink
 */
import type { Dataset } from '../../runtime/dataset.js';
import type { Frame, FrameSink, FrameSource } from '../../runtime/pipeline/frame.js';
import { boxArea, iou, type Box } from '../../runtime/detect/box.js';
import { Random } from '../crossbar/random.js';

/** Fashion-MNIST class → detector label (models/train_detector.py COARSE, LABELS). */
export const FASHION_MNIST_LABELS = ['top', 'trouser', 'top', 'dress', 'top', 'footwear', 'top', 'footwear', 'bag', 'footwear'] as const;

export interface SyntheticCameraOptions {
  /** 28×28 grey items with Fashion-MNIST labels. */
  sprites: Dataset;
  width?: number;
  height?: number;
  /** Frames per second pushed by start(); also the time step between rendered frames. */
  fps?: number;
  seed?: number;
  /** Objects on screen at most. */
  maxObjects?: number;
  /** Chance per frame that a new object appears while fewer than maxObjects are visible. */
  spawnChance?: number;
  /** Object speed in pixels per frame, per 96 px of frame. */
  speed?: number;
  /** Stop (and end()) after this many frames; endless without. */
  frames?: number;
  /** Capture time of frame k: start + k / fps (ms since the epoch). Default: now at construction. */
  startMs?: number;
}

interface SceneObject {
  id: number;
  label: string;
  sprite: Float32Array;
  size: number;
  /** Sprite pixels above the mask level: the object's tight box inside its sprite. */
  extent: Box;
  x: number;
  y: number;
  vx: number;
  vy: number;
  gain: number;
}

const MIN_SCALE = 20;
const MAX_SCALE = 40;
const MASK_LEVEL = 16;
/** An object counts as in view while this share of its box is inside the frame. */
const VISIBLE_SHARE = 0.5;

/** Frames larger than a 4K camera's are a typo, not a camera (and past ~46,000² no typed array holds one). */
const MAX_SIDE = 4096;

export class SyntheticCamera implements FrameSource {
  readonly description: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly #o: Required<Omit<SyntheticCameraOptions, 'frames' | 'startMs'>> & { frames?: number };
  readonly #rng: Random;
  readonly #background: Float32Array;
  readonly #noise: number;
  readonly #k: number;
  readonly #startMs: number;
  #objects: SceneObject[] = [];
  #frame = 0;
  #nextId = 1;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(o: SyntheticCameraOptions) {
    const [c, h, w] = o.sprites.sampleShape;
    if (c !== 1 || h !== 28 || w !== 28) throw new Error(`synthetic camera: sprites must be 1×28×28 Fashion-MNIST items (got ${c}×${h}×${w})`);
    this.#o = { width: 96, height: 96, fps: 10, seed: 1, maxObjects: 3, spawnChance: 0.1, speed: 1.5, ...o };
    this.width = this.#o.width;
    this.height = this.#o.height;
    this.fps = this.#o.fps;
    if (!(this.width >= 32 && this.height >= 32 && this.width <= MAX_SIDE && this.height <= MAX_SIDE && Number.isInteger(this.width) && Number.isInteger(this.height))) {
      throw new Error(`synthetic camera: size ${this.width}×${this.height} (at least 32×32, at most ${MAX_SIDE}×${MAX_SIDE})`);
    }
    if (!(this.fps > 0)) throw new Error(`synthetic camera: fps must be > 0 (got ${this.fps})`);
    this.description = `synthetic ${this.width}x${this.height}@${this.fps}`;
    this.#rng = new Random(this.#o.seed);
    this.#k = Math.min(this.width, this.height) / 96;
    this.#background = this.#renderBackground();
    this.#noise = this.#uniform(0, 8);
    this.#startMs = o.startMs ?? Date.now();
  }

  /** Renders the next frame and advances the scene by one time step. */
  render(): Frame {
    this.#step();
    const { width, height } = this;
    const img = new Float32Array(this.#background);
    const truth: NonNullable<Frame['truth']> = [];
    for (const ob of this.#objects) {
      const ox = Math.round(ob.x);
      const oy = Math.round(ob.y);
      for (let sy = 0; sy < ob.size; sy++) {
        const y = oy + sy;
        if (y < 0 || y >= height) continue;
        for (let sx = 0; sx < ob.size; sx++) {
          const x = ox + sx;
          if (x < 0 || x >= width) continue;
          const v = ob.sprite[sy * ob.size + sx]!;
          const m = Math.min(v / 40, 1);
          img[y * width + x] = img[y * width + x]! * (1 - m) + v * ob.gain * m;
        }
      }
      const box = visibleBox(ob, ox, oy, width, height);
      if (box) truth.push({ id: ob.id, label: ob.label, box });
    }
    // Slow brightness and contrast changes (a cloud, auto-exposure), then sensor noise.
    const phase = (this.#frame / Math.max(1, this.fps * 8)) * 2 * Math.PI;
    const contrast = 1 + 0.2 * Math.sin(phase);
    const brightness = 20 * Math.sin(phase * 0.7 + 1);
    const pixels = new Uint8Array(width * height);
    for (let i = 0; i < pixels.length; i++) {
      const v = (img[i]! - 128) * contrast + 128 + brightness + this.#noise * this.#rng.normal();
      pixels[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
    const index = this.#frame++;
    return { t: this.#startMs + (index * 1000) / this.fps, width, height, channels: 1, pixels, origin: `synthetic frame ${index}`, truth };
  }

  async start(sink: FrameSink): Promise<void> {
    const begin = performance.now();
    const tick = (): void => {
      if (this.#o.frames !== undefined && this.#frame >= this.#o.frames) {
        this.#timer = undefined;
        sink.end();
        return;
      }
      sink.frame({ ...this.render(), t: Date.now() });
      // Paced against the start, so a slow consumer does not slow the camera down.
      this.#timer = setTimeout(tick, Math.max(0, begin + (this.#frame * 1000) / this.fps - performance.now()));
    };
    this.#timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.#rng.uniform();
  }

  #int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.#rng.uniform() * (hiInclusive - lo + 1));
  }

  #renderBackground(): Float32Array {
    const { width, height } = this;
    const bg = new Float32Array(width * height);
    const level = this.#uniform(0, 90);
    const gx = this.#uniform(-40, 40);
    const gy = this.#uniform(-40, 40);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) bg[y * width + x] = level + gx * (x / width - 0.5) + gy * (y / height - 0.5);
    const k = this.#k;
    for (let n = this.#int(0, 5); n > 0; n--) {
      const x0 = this.#int(0, width - 1);
      const y0 = this.#int(0, height - 1);
      if (this.#rng.uniform() < 0.5) {
        const [w, h, v] = [Math.round(this.#int(4, 29) * k), Math.round(this.#int(4, 29) * k), this.#uniform(-40, 40)];
        for (let y = y0; y < Math.min(y0 + h, height); y++) for (let x = x0; x < Math.min(x0 + w, width); x++) bg[y * width + x]! += v;
      } else {
        const horizontal = this.#rng.uniform() < 0.5;
        const [length, thick, v] = [this.#int(10, Math.max(width, height)), Math.max(1, Math.round(this.#int(1, 2) * k)), this.#uniform(-60, 60)];
        const [w, h] = horizontal ? [length, thick] : [thick, length];
        for (let y = y0; y < Math.min(y0 + h, height); y++) for (let x = x0; x < Math.min(x0 + w, width); x++) bg[y * width + x]! += v;
      }
    }
    return bg;
  }

  /** Moves every object, drops those that left the frame, maybe lets a new one in. */
  #step(): void {
    for (const ob of this.#objects) {
      ob.x += ob.vx;
      ob.y += ob.vy;
    }
    this.#objects = this.#objects.filter((ob) => visibleBox(ob, Math.round(ob.x), Math.round(ob.y), this.width, this.height) !== undefined);
    if (this.#objects.length < this.#o.maxObjects && (this.#frame === 0 || this.#rng.uniform() < this.#o.spawnChance)) this.#spawn();
  }

  /** A new object fully in view, not overlapping the others, heading in a random direction. */
  #spawn(): void {
    const ds = this.#o.sprites;
    for (let attempt = 0; attempt < 10; attempt++) {
      const item = this.#int(0, ds.count - 1);
      const size = Math.round(this.#int(MIN_SCALE, MAX_SCALE) * this.#k);
      const sprite = resize(ds.pixels.subarray(item * 784, (item + 1) * 784), 28, size);
      const extent = extentOf(sprite, size);
      if (!extent) continue;
      const x = this.#int(-extent[0], this.width - extent[2]);
      const y = this.#int(-extent[1], this.height - extent[3]);
      const box: Box = [x + extent[0], y + extent[1], x + extent[2], y + extent[3]];
      if (this.#objects.some((o) => iou(box, [o.x + o.extent[0], o.y + o.extent[1], o.x + o.extent[2], o.y + o.extent[3]]) > 0.2)) continue;
      const angle = this.#uniform(0, 2 * Math.PI);
      const speed = this.#o.speed * this.#k * this.#uniform(0.6, 1.4);
      this.#objects.push({
        id: this.#nextId++, label: FASHION_MNIST_LABELS[ds.labels[item]!]!, sprite, size, extent, x, y,
        vx: speed * Math.cos(angle), vy: speed * Math.sin(angle), gain: this.#uniform(0.6, 1.2),
      });
      return;
    }
  }
}

/** The part of the object's box inside the frame, if at least VISIBLE_SHARE of it is. */
function visibleBox(ob: SceneObject, ox: number, oy: number, width: number, height: number): Box | undefined {
  const full: Box = [ox + ob.extent[0], oy + ob.extent[1], ox + ob.extent[2], oy + ob.extent[3]];
  const seen: Box = [Math.max(0, full[0]), Math.max(0, full[1]), Math.min(width, full[2]), Math.min(height, full[3])];
  const area = boxArea(seen);
  return area > 0 && area >= VISIBLE_SHARE * boxArea(full) ? seen : undefined;
}

/** Bilinear resize of an n×n item to size×size (pixel centres aligned, as the training script). */
function resize(src: Uint8Array, n: number, size: number): Float32Array {
  const at = new Float64Array(size);
  const i0 = new Int32Array(size);
  const i1 = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const c = Math.min(Math.max(((i + 0.5) * n) / size - 0.5, 0), n - 1);
    i0[i] = Math.floor(c);
    i1[i] = Math.min(i0[i]! + 1, n - 1);
    at[i] = c - i0[i]!;
  }
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const top = src[i0[y]! * n + i0[x]!]! * (1 - at[x]!) + src[i0[y]! * n + i1[x]!]! * at[x]!;
      const bottom = src[i1[y]! * n + i0[x]!]! * (1 - at[x]!) + src[i1[y]! * n + i1[x]!]! * at[x]!;
      out[y * size + x] = top * (1 - at[y]!) + bottom * at[y]!;
    }
  }
  return out;
}

/** Tight box [x1, y1, x2, y2) of the sprite's pixels above the mask level. */
function extentOf(sprite: Float32Array, size: number): Box | undefined {
  let [x1, y1, x2, y2] = [size, size, -1, -1];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (sprite[y * size + x]! <= MASK_LEVEL) continue;
      x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x); y2 = Math.max(y2, y);
    }
  }
  return x2 < 0 ? undefined : [x1, y1, x2 + 1, y2 + 1];
}
