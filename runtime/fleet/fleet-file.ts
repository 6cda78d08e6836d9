/**
 * Fleet files: which emulated devices `edgerun fleet devices` (and `fleet agent`) run. YAML or JSON,
 * either groups written out
 *
 *   fleet: plant-a
 *   groups:
 *     - name: line1
 *       count: 500
 *       profile: pcm          # device profile name, or a profile JSON file (relative to the fleet file)
 *       age: 1d               # device age after programming: s, m, h, d, w, y
 *       models: [mlp]         # bundled model names (mlp, cnn) or .onnx paths
 *       rateHz: 1             # inferences per second per model stream
 *       seed: 1000            # device i of the group is instance seed + i
 *       sign: false           # sign outgoing messages (a key per device)
 *       battery: { capacityWh: 10, initialPct: 100, idleW: 0.5 }
 *       serviceTime: { distribution: exponential, meanMs: 20 }   # optional: a chip's latency per inference
 *
 * or generated from a seed (`generate: { devices: 1000, seed: 7 }`): a few groups with profiles,
 * ages, rates and batteries drawn from the seed, the same fleet for the same seed. Either form
 * expands to one DeviceSpec per device, in a stable order (group by group).
 */
import { Lexer, parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { MAX_JSON_DEPTH, parseJson } from '../json.js';
import { parseAges } from '../hybrid/drift-sweep.js';
import type { ServiceTime } from '../service-time.js';

/** More devices than this in one file is a typo, not a fleet one machine (or agent) hosts. */
export const MAX_FLEET_DEVICES = 100_000;

const name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').max(64);
const age = z.union([z.number().nonnegative().finite(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    const ages = parseAges(v);
    if (ages.length === 1) return ages[0]!.seconds;
    ctx.addIssue({ code: 'custom', message: `one age, not a list ('${v}')` });
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
  return z.NEVER;
});

const battery = z.strictObject({
  capacityWh: z.number().positive().max(1e6),
  initialPct: z.number().min(0).max(100).default(100),
  idleW: z.number().nonnegative().max(1e4).default(0),
});

/** A modelled accelerator latency per inference (runtime/service-time.ts), for emulating a chip slower than this CPU. */
const serviceTime = z.strictObject({
  distribution: z.enum(['fixed', 'exponential']).default('fixed'),
  meanMs: z.number().positive().max(60_000),
});

const group = z.strictObject({
  name,
  count: z.number().int().min(1).max(MAX_FLEET_DEVICES),
  profile: z.string().min(1).default('pcm'),
  age: age.default(0),
  models: z.array(z.string().min(1)).min(1).max(16).default(['mlp']),
  rateHz: z.number().positive().max(1000).default(1),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  sign: z.boolean().default(false),
  battery: battery.optional(),
  serviceTime: serviceTime.optional(),
});

const fleetFileSchema = z.strictObject({
  fleet: name.default('default'),
  groups: z.array(group).min(1).max(1000).optional(),
  generate: z.strictObject({
    devices: z.number().int().min(1).max(MAX_FLEET_DEVICES),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  }).optional(),
}).superRefine((f, ctx) => {
  if ((f.groups === undefined) === (f.generate === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'give either groups or generate' });
  const seen = new Set<string>();
  for (const [i, g] of (f.groups ?? []).entries()) {
    if (seen.has(g.name)) ctx.addIssue({ code: 'custom', path: ['groups', i, 'name'], message: `group '${g.name}' appears twice` });
    seen.add(g.name);
  }
  const total = (f.groups ?? []).reduce((n, g) => n + g.count, 0);
  if (total > MAX_FLEET_DEVICES) ctx.addIssue({ code: 'custom', path: ['groups'], message: `${total} devices in all, more than the ${MAX_FLEET_DEVICES} a fleet file may hold` });
});

export type FleetFile = z.infer<typeof fleetFileSchema>;
export type FleetGroup = z.infer<typeof group>;
export type BatterySpec = z.infer<typeof battery>;

/** One emulated device: everything a fleet host needs to build it. */
export interface DeviceSpec {
  /** Unique in the fleet: `<group>-<index in group>`. */
  id: string;
  group: string;
  /** Device profile name or profile file, as the fleet file gives it. */
  profile: string;
  /** Device instance: programming noise, drift exponents, read noise. */
  seed: number;
  /** Device age (seconds since programming) the device runs at. */
  ageS: number;
  /** Model names or files, as the fleet file gives them. */
  models: string[];
  /** Inferences per second per model stream. */
  rateHz: number;
  sign: boolean;
  battery?: BatterySpec;
  /** Each inference occupies the device at least a draw of this (a chip's latency); absent: the emulator's own speed. */
  serviceTime?: ServiceTime;
}

export interface Fleet {
  fleet: string;
  devices: DeviceSpec[];
}

export class FleetFileError extends Error {
  override readonly name = 'FleetFileError';
}

/**
 * YAML's parser slows down with each level of nesting (100,000 `[` take seconds) and its composer
 * recurses per level until the stack overflows, so deep nesting is refused from the tokens first
 * (the lexer is linear): flow collections deeper than MAX_JSON_DEPTH, a line with more block
 * indicators (`- - - …`) than that, or indentation wider than four columns per level.
 */
function checkYamlNesting(text: string, source: string): string {
  let flow = 0, indicators = 0, lineStart = true;
  const tooDeep = (): never => { throw new FleetFileError(`${source}: not a readable fleet file: nested more than ${MAX_JSON_DEPTH} levels deep`); };
  for (const token of new Lexer().lex(text)) {
    if (token === '\n') { lineStart = true; indicators = 0; continue; }
    if (lineStart && token.trim() === '' && token.length > 4 * MAX_JSON_DEPTH) tooDeep();
    lineStart = false;
    if (token === '[' || token === '{') { if (++flow > MAX_JSON_DEPTH) tooDeep(); }
    else if (token === ']' || token === '}') flow--;
    else if ((token === '-' || token === '?' || token === ':') && ++indicators > MAX_JSON_DEPTH) tooDeep();
  }
  return text;
}

/** Parses and checks a fleet file (YAML, or JSON when the name ends in .json); one-line errors. */
export function parseFleetFile(text: string, source: string): FleetFile {
  let raw: unknown;
  try {
    raw = source.toLowerCase().endsWith('.json') ? parseJson(text, source)
      // A handful of anchors is plenty for a fleet file; many more is an alias bomb. Warnings (an
      // unknown tag such as !!js/function) are not printed: the schema below refuses what they leave.
      : parseYaml(checkYamlNesting(text, source), { maxAliasCount: 50, uniqueKeys: true, prettyErrors: false, logLevel: 'error' });
  } catch (e) {
    if (e instanceof FleetFileError) throw e;
    const why = e instanceof YAMLParseError ? e.message.split('\n')[0] : (e as Error).message;
    throw new FleetFileError(`${source}: not a readable fleet file: ${why}`);
  }
  const parsed = fleetFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FleetFileError(`${source}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Choices `generate` draws from: the bundled profiles, ages from fresh to old, a few rates and batteries. */
const GENERATED = {
  profiles: ['pcm', 'pcm', 'flash'],
  agesS: [3600, 86_400, 604_800, 31_536_000],
  ratesHz: [0.5, 1, 1, 2],
  batteriesWh: [5, 10, 20],
};

/**
 * The groups `generate` makes: up to four, sizes as even as possible, each with a profile, age,
 * rate, battery and first seed drawn from `uniform` (seeded by the caller from generate.seed).
 */
function generatedGroups(devices: number, uniform: () => number): FleetGroup[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(uniform() * xs.length)]!;
  const groups = Math.min(4, devices);
  return Array.from({ length: groups }, (_, g) => ({
    name: `g${g}`,
    count: Math.floor(devices / groups) + (g < devices % groups ? 1 : 0),
    profile: pick(GENERATED.profiles),
    age: pick(GENERATED.agesS),
    models: ['mlp'],
    rateHz: pick(GENERATED.ratesHz),
    seed: Math.floor(uniform() * 0x7fffffff),
    sign: false,
    battery: { capacityWh: pick(GENERATED.batteriesWh), initialPct: 50 + Math.floor(uniform() * 51), idleW: 0.5 },
  }));
}

/** One DeviceSpec per device; `rng(seed)` gives the uniform draws `generate` needs. */
export function expandFleet(file: FleetFile, rng: (seed: number) => () => number): Fleet {
  const groups = file.groups ?? generatedGroups(file.generate!.devices, rng(file.generate!.seed));
  const devices: DeviceSpec[] = [];
  for (const g of groups) {
    const width = String(g.count - 1).length;
    for (let i = 0; i < g.count; i++) {
      devices.push({
        id: `${g.name}-${String(i).padStart(width, '0')}`, group: g.name, profile: g.profile, seed: (g.seed + i) >>> 0, ageS: g.age,
        models: g.models, rateHz: g.rateHz, sign: g.sign, ...(g.battery ? { battery: g.battery } : {}), ...(g.serviceTime ? { serviceTime: g.serviceTime } : {}),
      });
    }
  }
  return { fleet: file.fleet, devices };
}
