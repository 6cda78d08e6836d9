/** Shared helpers for the crossbar tests: seeded data, a float64 reference and error measures. */
import { CrossbarEmulator, type EmulatorOptions } from '../../drivers/crossbar/index.js';
import { Random } from '../../drivers/crossbar/random.js';
import type { ProfileOverrides } from '../../drivers/crossbar/profile.js';

export function randomMatrix(rows: number, cols: number, seed: number, std = 0.1): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: rows * cols }, () => rng.normal() * std);
}

/** ReLU-like activations: about half exactly zero. */
export function randomInputs(batch: number, k: number, seed: number): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: batch * k }, () => Math.max(0, rng.normal()));
}

/** y = x·W in float64: x is batch × k, W is k × n, both row-major. */
export function reference(x: Float32Array, w: Float32Array, batch: number, k: number, n: number): Float64Array {
  const y = new Float64Array(batch * n);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < k; r++) {
      const xv = x[b * k + r]!;
      for (let c = 0; c < n; c++) y[b * n + c] = y[b * n + c]! + xv * w[r * n + c]!;
    }
  }
  return y;
}

/** ‖y − ref‖ / ‖ref‖. */
export function relError(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    e += (y[i]! - ref[i]!) ** 2;
    n += ref[i]! ** 2;
  }
  return Math.sqrt(e / n);
}

/** Largest element-wise |y − ref| / max(|ref|, floor·max|ref|). */
export function maxRelError(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / Math.max(Math.abs(ref[i]!), 1e-3 * scale));
  return worst;
}

/**
 * Largest |y − ref| / (|ref| + rms(ref)): for matrices split over tiles, whose float32 partial sums
 * round at the scale of the partials, not of a (possibly cancelled) total.
 */
export function splitError(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < ref.length; i++) s += ref[i]! ** 2;
  const rms = Math.sqrt(s / ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / (Math.abs(ref[i]!) + rms));
  return worst;
}

export function meanAbs(y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += Math.abs(y[i]!);
  return s / y.length;
}

/** The pcm profile with every non-ideality off: tests switch on only the one they study. */
export const PCM_ALL_OFF = {
  programmingNoise: { enabled: false }, drift: { enabled: false }, readNoise: { enabled: false }, outputNoise: 0,
  dac: { bits: null }, adc: { bits: null, bound: null }, boundManagement: 'none', gdc: 'off', temperature: { coefficient: 0 },
} satisfies ProfileOverrides;

/** An emulator with one rows × cols block programmed on tile 0; returns the emulator and the MVM result. */
export async function oneTile(profile: string, w: Float32Array, rows: number, cols: number, x: Float32Array, batch: number, options: EmulatorOptions = {}): Promise<{ em: CrossbarEmulator; y: Float32Array }> {
  const em = new CrossbarEmulator(profile, { seed: 1, ...options });
  await em.program(0, w, rows, cols);
  return { em, y: (await em.mvm(0, x, batch)).slice() };
}

/** Mean relative error over a few seeds (device instances), to keep monotonicity tests robust. */
export async function errorOver(seeds: number[], profile: string, overrides: ProfileOverrides, w: Float32Array, rows: number, cols: number, x: Float32Array, batch: number): Promise<number> {
  const ref = reference(x, w, batch, rows, cols);
  let sum = 0;
  for (const seed of seeds) {
    const { y } = await oneTile(profile, w, rows, cols, x, batch, { seed, overrides });
    sum += relError(y, ref);
  }
  return sum / seeds.length;
}
