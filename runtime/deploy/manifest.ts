/**
 * The manifest of a model bundle (the one JSON file the signature covers): what the model is, which
 * parts the bundle holds (sha256 + size each), where it may run and how the device proves it before
 * switching to it (canary inputs, their expected digital outputs, the guard thresholds).
 * README.md "Model bundles" documents the format.
 */
import { createHash } from 'node:crypto';
import semver from 'semver';
import { z } from 'zod';
import { DeployError } from './errors.js';
import { JsonError, parseJson } from '../json.js';

export const BUNDLE_FORMAT = 'edgerun-bundle/1';
/** Parts every bundle holds besides manifest.json and manifest.sig. */
export const MODEL_PART = 'model.onnx';
export const CANARY_INPUTS_PART = 'canary-inputs.f32';
export const CANARY_EXPECTED_PART = 'canary-expected.f32';

const LEVEL = /^[A-Za-z0-9_.-]+$/;
const semverString = z.string().max(64).refine((v) => semver.valid(v) === v, { message: 'expected a semantic version such as 1.2.0' });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const dims = z.array(z.union([z.number().int().min(0), z.string().max(64)])).max(8);
const ioSpec = z.strictObject({ name: z.string().min(1).max(256), type: z.string().max(16), dims, anyRank: z.boolean().optional() });
const part = z.strictObject({ sha256, size: z.number().int().min(0) });

export const manifestSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  model: z.strictObject({
    /** The id streams name the model by (the daemon's model id, e.g. "cnn"). */
    id: z.string().min(1).max(64).regex(LEVEL, 'letters, digits, "_", "." and "-" only'),
    version: semverString,
    inputs: z.array(ioSpec).min(1).max(16),
    outputs: z.array(ioSpec).min(1).max(16),
  }),
  /** Class names, index = class. */
  labels: z.array(z.string().max(256)).max(100_000).default([]),
  /** Device profiles the model is meant for (empty: any). */
  profiles: z.array(z.string().min(1).max(64).regex(LEVEL)).max(32).default([]),
  /** The oldest edgerun runtime that can serve it. */
  minRuntime: semverString,
  /** Self-test on the device: the canaries on its placement vs the expected digital outputs. */
  guard: z.strictObject({
    minAgreement: z.number().min(0).max(1),
    minCosine: z.number().min(-1).max(1),
  }),
  canary: z.strictObject({
    count: z.number().int().min(1).max(4096),
    /** Shape of one canary input (without the batch axis) and of one expected output row. */
    inputShape: z.array(z.number().int().min(1)).min(1).max(8),
    outputShape: z.array(z.number().int().min(1)).min(1).max(8),
  }),
  parts: z.strictObject({
    [MODEL_PART]: part,
    [CANARY_INPUTS_PART]: part,
    [CANARY_EXPECTED_PART]: part,
  }),
  created: z.string().max(64),
});
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestInput = z.input<typeof manifestSchema>;
export type PartName = keyof Manifest['parts'];
export const PART_NAMES = [MODEL_PART, CANARY_INPUTS_PART, CANARY_EXPECTED_PART] as const satisfies readonly PartName[];

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function encodeManifest(m: ManifestInput): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(manifestSchema.parse(m), null, 2)}\n`);
}

/** Parses manifest bytes; throws a DeployError ('malformed') naming the first bad field. */
export function parseManifest(bytes: Uint8Array): Manifest {
  let json: unknown;
  try {
    // parseJson: hostile nesting and prototype keys are refused before anything recurses.
    json = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes), 'manifest.json');
  } catch (e) {
    throw new DeployError('malformed', e instanceof JsonError ? e.message : `manifest.json is not UTF-8 text (${(e as Error).message})`);
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new DeployError('malformed', `manifest.json: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}

/**
 * Directory name of an installed version inside its model's directory (`versions/<model>/<version>`):
 * storage names allow no "+" (semver build metadata). A directory per model keeps which versions
 * belong to which model unambiguous: ids may contain "-" and look like versions (`det-v2`, `a-1.0.0`).
 */
export function versionDirName(version: string): string {
  return version.replace(/\+/g, '_');
}
