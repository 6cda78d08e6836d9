/**
 * Device profiles: the constants of an analog accelerator, as data files in profiles/<name>.json,
 * each constant's source in the file's `sources` map (dotted field path → citation). Validated with
 * zod; a bad constant is refused with the path of the field, an unknown name with the known ones.
 */
import { readdirSync } from 'node:fs';
import { FILE_LIMITS, readTextLimitedSync } from '../storage/read-file.js';
import { parseJson } from '../../runtime/json.js';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { z } from 'zod';
import { deviceEnergySchema } from '../../runtime/power/energy-constants.js';
import { PERIPHERY_OPS } from '../../runtime/accelerator.js';

/**
 * Physical bounds: far outside every device published, yet small enough that the emulator's
 * float32 arithmetic (conductances squared in noise terms, sums over 8192 rows) stays finite.
 * A profile outside them is a typo or an attack, not a device.
 */
const coefficient = z.number().min(-100).max(100);
/** value = clamp(a·ln(g/g_max) + b, min, max): aihwkit's conductance-dependent drift statistics (ν ≤ 1). */
const logLaw = z.strictObject({ a: coefficient, b: coefficient, min: z.number().min(0).max(1), max: z.number().min(0).max(1) })
  .refine((v) => v.min <= v.max, { message: 'min must not exceed max' });
/** Converter / weight resolution in bits, sign included; null = unquantised. */
const bits = z.number().int().min(2).max(24).nullable();
const scale = z.number().min(0).max(100).default(1);

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
  gMax: z.number().positive().max(10_000),
  weightScale: z.enum(['per-column', 'per-tile']),
  /** Levels a device can hold (flash cells store a fixed number); null = continuous (PCM). */
  weightBits: bits,
  programmingNoise: z.strictObject({
    enabled: z.boolean(),
    /** σ(g) = (c0 + c1·g/g_max + c2·(g/g_max)²) · g_max/gMaxReference, in µS. */
    c: z.tuple([coefficient, coefficient, coefficient]),
    gMaxReference: z.number().positive().max(10_000).default(25),
    scale,
  }),
  drift: z.strictObject({
    enabled: z.boolean(),
    /** Seconds from programming to the first read: G(t) = G_prog·((t + t0)/t0)^−ν. */
    t0: z.number().positive().max(1e9),
    nuMean: logLaw,
    nuStd: logLaw,
    scale,
  }),
  readNoise: z.strictObject({
    enabled: z.boolean(),
    /** Q_s = min(qsCoeff / max((g/g_max)^qsExponent, qsFloor), qsMax). */
    qsCoeff: z.number().min(0).max(100),
    qsExponent: z.number().min(0).max(100),
    qsFloor: z.number().positive().max(1).default(1e-3),
    qsMax: z.number().min(0).max(100),
    /** Seconds; σ(t) = Q_s·sqrt(ln((t + tRead)/(2·tRead))). */
    tRead: z.number().positive().max(1e9),
    scale,
  }),
  /** σ of additive Gaussian noise on every analog output, in bound-normalised units (0 = off). */
  outputNoise: z.number().min(0).max(100),
  dac: z.strictObject({ bits }),
  /** bound: outputs saturate at ±bound (normalised units); null = unbounded. */
  adc: z.strictObject({ bits, bound: z.number().positive().max(1e6).nullable() }),
  /** Re-run with halved inputs while outputs saturate (aihwkit BoundManagementType.ITERATIVE). */
  boundManagement: z.enum(['none', 'iterative']),
  /** Drift compensation from a calibration read: off, one factor per tile, or one per column. */
  gdc: z.enum(['off', 'global', 'per-column']),
  /** Fractions of devices stuck at g_max (on) or 0 (off). */
  faults: z.strictObject({ stuckOn: z.number().min(0).max(1), stuckOff: z.number().min(0).max(1) })
    .refine((f) => f.stuckOn + f.stuckOff <= 1, { message: 'stuckOn + stuckOff must not exceed 1' }),
  /** Ω per wire segment between neighbouring cells, read voltage in V (see ir-drop.ts). */
  irDrop: z.strictObject({ enabled: z.boolean(), wireResistance: z.number().min(0).max(1e6), readVoltage: z.number().positive().max(100) }),
  temperature: z.strictObject({
    /** Kelvin at which the other constants hold. */
    reference: z.number().positive().max(1000),
    /** Die temperature at start-up, kelvin. */
    initial: z.number().positive().max(1000),
    /** α: G(T) = G·(1 + α·(T − reference)), per kelvin. */
    coefficient: z.number().min(-1).max(1),
  }),
  /** Energy per MAC, per conversion (against bits) and per programmed cell: runtime/power/energy-constants.ts. */
  energy: deviceEnergySchema.optional(),
  /**
   * The digital periphery next to each array: the post-ADC operators it applies (runtime/accelerator.ts
   * PERIPHERY_OPS), each with its energy in fJ per element (pooling: per window element read).
   * Absent: only the per-column affine (scale, bias).
   */
  periphery: z.partialRecord(z.enum(PERIPHERY_OPS), z.number().min(0)).default({}),
}).superRefine((p, ctx) => {
  if (p.adc.bits !== null && p.adc.bound === null) {
    ctx.addIssue({ code: 'custom', path: ['adc', 'bound'], message: 'a quantising ADC (adc.bits set) needs a range: set adc.bound' });
  }
  for (const key of Object.keys(p.sources)) {
    if (lookup(p, key) === undefined) ctx.addIssue({ code: 'custom', path: ['sources', key], message: `cites '${key}', which is not a field of the profile` });
  }
});

export type DeviceProfile = z.infer<typeof profileSchema>;
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends readonly unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };
/** Changes to a profile, e.g. { adc: { bits: 6 } }, { gdc: 'off' }, { readNoise: { enabled: false } }. */
export type ProfileOverrides = DeepPartial<DeviceProfile>;

const PROFILE_DIR = fileURLToPath(new URL('./profiles/', import.meta.url));

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
}

/** Names of the profiles shipped in profiles/. */
export function listProfiles(): string[] {
  return readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** A profile by name (profiles/<name>.json) or by path to a JSON file, with optional overrides. */
export function loadProfile(nameOrPath: string, overrides: ProfileOverrides = {}): DeviceProfile {
  const isPath = /[/\\]/.test(nameOrPath) || nameOrPath.endsWith('.json');
  if (!isPath && !listProfiles().includes(nameOrPath)) {
    throw new ProfileError(`unknown device profile '${nameOrPath}'; known profiles: ${listProfiles().join(', ')} (or give a path to a profile JSON file)`);
  }
  const file = isPath ? nameOrPath : join(PROFILE_DIR, `${nameOrPath}.json`);
  let raw: unknown;
  try {
    raw = parseJson(readTextLimitedSync(file, FILE_LIMITS.small, 'device profile'), file);
  } catch (e) {
    throw new ProfileError(`cannot read device profile ${file}: ${(e as Error).message}`);
  }
  return parseProfile(deepMerge(raw, overrides), file);
}

/** Validates a profile object (e.g. a loaded profile with overrides merged in). */
export function parseProfile(raw: unknown, source = 'profile'): DeviceProfile {
  const result = profileSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
  throw new ProfileError(`invalid device profile ${source}:\n${issues}`);
}

/** A profile with overrides applied and re-validated. */
export function withOverrides(profile: DeviceProfile, overrides: ProfileOverrides, source = profile.name): DeviceProfile {
  return parseProfile(deepMerge(profile, overrides), `${source} (with overrides)`);
}

/**
 * Overrides from command-line style flags: `--adc-bits N`, `--dac-bits N`, `--gdc on|off`.
 * `gdc: 'on'` means global drift compensation; `per-column` selects the per-column variant.
 */
export function overridesFromFlags(flags: { adcBits?: number; dacBits?: number; gdc?: 'on' | 'off' | 'global' | 'per-column' | boolean }): ProfileOverrides {
  const o: ProfileOverrides = {};
  if (flags.adcBits !== undefined) o.adc = { bits: flags.adcBits };
  if (flags.dacBits !== undefined) o.dac = { bits: flags.dacBits };
  if (flags.gdc !== undefined) o.gdc = flags.gdc === true || flags.gdc === 'on' ? 'global' : flags.gdc === false ? 'off' : flags.gdc;
  return o;
}

/** True when every non-ideality is off: the tile then computes x·W digitally exactly. */
export function isDigitalExact(p: DeviceProfile): boolean {
  return !p.programmingNoise.enabled && !p.drift.enabled && !p.readNoise.enabled && p.outputNoise === 0 &&
    p.dac.bits === null && p.adc.bits === null && p.adc.bound === null && p.weightBits === null &&
    p.faults.stuckOn === 0 && p.faults.stuckOff === 0 && !p.irDrop.enabled && p.temperature.coefficient === 0;
}

function lookup(obj: unknown, dotted: string): unknown {
  let v: unknown = obj;
  for (const k of dotted.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (!isPlainObject(a) || !isPlainObject(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) if (v !== undefined) out[k] = deepMerge(out[k], v);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
