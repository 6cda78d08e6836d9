/**
 * Accuracy (or another measure) of one analog device instance as it ages: set the device clock, optionally refresh drift
 * compensation (GDC), evaluate. The caller repeats this over device instances (seeds).
 */
import type { CrossbarDriver } from '../accelerator.js';
import type { Dataset } from '../dataset.js';
import { evaluate, type EvalOptions } from '../evaluate.js';
import type { HybridModel } from './analog-backend.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** "1s,1h,1d,1y" → seconds; a bare number is seconds. */
export function parseAges(list: string): { label: string; seconds: number }[] {
  const ages = list.split(',').map((s) => s.trim()).filter(Boolean).map((label) => {
    const m = /^(\d+(?:\.\d+)?)([smhdwy]?)$/.exec(label);
    if (!m) throw new Error(`bad age '${label}': use a number with a unit s, m, h, d, w or y (e.g. 1h)`);
    const seconds = Number(m[1]) * UNITS[m[2] || 's']!;
    if (!Number.isFinite(seconds)) throw new Error(`bad age '${label}': too large`);
    return { label, seconds };
  });
  if (ages.length === 0) throw new Error(`--age '${list}' names no age: give a list such as 1s,1h,1d`);
  return ages;
}

export interface AgePoint { label: string; seconds: number; accuracy: number }

/** Any quality measure (accuracy, mAP) of the aged device, one point per age. */
export async function metricOverAges(model: HybridModel, driver: CrossbarDriver, ages: { label: string; seconds: number }[], gdc: boolean, measure: (model: HybridModel) => Promise<number>): Promise<{ label: string; seconds: number; value: number }[]> {
  const points: { label: string; seconds: number; value: number }[] = [];
  for (const age of ages) {
    await driver.setAge(age.seconds);
    if (gdc) await model.calibrate();
    points.push({ ...age, value: await measure(model) });
  }
  return points;
}

export async function accuracyOverAges(model: HybridModel, driver: CrossbarDriver, ages: { label: string; seconds: number }[], data: Dataset, options: EvalOptions & { gdc: boolean }): Promise<AgePoint[]> {
  const points = await metricOverAges(model, driver, ages, options.gdc, async (m) => (await evaluate(m, data, options)).accuracy);
  return points.map(({ value, ...age }) => ({ ...age, accuracy: value }));
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}
