/**
 * Device profiles: the constants of an analog accelerator, as data files in profiles/*.json, each
 * constant's source in the file's `sources` map. Validated with zod; a bad constant is refused with
 * the path of the field.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { z } from 'zod';

/** value = clamp(a·ln(g/g_max) + b, min, max): aihwkit's conductance-dependent drift statistics. */
const logLaw = z.strictObject({ a: z.number(), b: z.number(), min: z.number().min(0), max: z.number().min(0) })
  .refine((v) => v.min <= v.max, { message: 'min must not exceed max' });
const bits = z.number().int().min(1).max(24).nullable(); // null: unquantised

export const profileSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string(),
  /** Where each constant comes from: dotted field path → citation. */
  sources: z.record(z.string(), z.string()),
  tile: z.strictObject({
    rows: z.number().int().min(1).max(8192),
    cols: z.number().int().min(1).max(8192),
    count: z.number().int().min(1).max(1_000_000),
  }),
  /** Largest device conductance in µS; |w|max of a column (or tile) maps to it. */
  gMax: z.number().positive(),
  weightScale: z.enum(['per-column', 'per-tile']),
  /** Weight levels stored per device (flash cells hold a fixed number of levels); null: analog. */
  weightBits: bits,
  programmingNoise: z.strictObject({
    enabled: z.boolean(),
    /** σ(g) = (c0 + c1·g/g_max + c2·(g/g_max)²)·g_max/25 µS. */
    c: z.tuple([z.number(), z.number(), z.number()]),
  }),
  drift: z.strictObject({
    enabled: z.boolean(),
    /** Seconds between programming and the first read (G(t) = G·((t+t0)/t0)^−ν). */
    t0: z.number().positive(),
    nuMean: logLaw,
    nuStd: logLaw,
  }),
  readNoise: z.strictObject({
    enabled: z.boolean(),
    /** Q_s = min(qsCoeff / max((g/g_max)^qsExponent, 1e-3), qsMax). */
    qsCoeff: z.number().min(0),
    qsExponent: z.number().min(0),
    qsMax: z.number().min(0),
    tRead: z.number().positive(),
  }),
  /** Additive Gaussian noise on every MVM output, relative to the bound-normalised output. */
  outputNoise: z.number().min(0),
  dac: z.strictObject({ bits }),
  adc: z.strictObject({ bits, bound: z.number().positive().nullable() }),
  /** Re-run with halved inputs when outputs saturate the ADC (aihwkit ITERATIVE bound management). */
  boundManagement: z.enum(['none', 'iterative']),
  /** Drift compensation from a calibration read: none, one factor per tile, or one per column. */
  gdc: z.enum(['off', 'global', 'per-column']),
  faults: z.strictObject({ stuckOn: z.number().min(0).max(1), stuckOff: z.number().min(0).max(1) })
    .refine((f) => f.stuckOn + f.stuckOff <= 1, { message: 'stuckOn + stuckOff must not exceed 1' }),
  irDrop: z.strictObject({ enabled: z.boolean(), wireResistance: z.number().min(0), readVoltage: z.number().positive() }),
  temperature: z.strictObject({
    reference: z.number().positive(),
    initial: z.number().positive(),
    /** Relative conductance change per kelvin above the reference. */
    coefficient: z.number(),
  }),
  /** Energy constants (see runtime/power). */
  energy: z.record(z.string(), z.union([z.number(), z.string()])).optional(),
});

export type DeviceProfile = z.infer<typeof profileSchema>;
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
}

export function listProfiles(): string[] {
  return readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** A profile by name (profiles/<name>.json) or by path to a JSON file, with optional overrides. */
export function loadProfile(nameOrPath: string, overrides: DeepPartial<DeviceProfile> = {}): DeviceProfile {
  const isPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  if (!isPath && !listProfiles().includes(nameOrPath)) {
    throw new ProfileError(`unknown device profile '${nameOrPath}'; known profiles: ${listProfiles().join(', ')} (or give a path to a profile JSON file)`);
  }
  const file = isPath ? nameOrPath : join(PROFILE_DIR, `${nameOrPath}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ProfileError(`cannot read device profile ${file}: ${(e as Error).message}`);
  }
  return parseProfile(deepMerge(raw, overrides), file);
}

export function parseProfile(raw: unknown, source = 'profile'): DeviceProfile {
  const result = profileSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
  throw new ProfileError(`invalid device profile ${source}:\n${issues}`);
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) if (v !== undefined) out[k] = deepMerge(out[k], v);
  return out;
}
