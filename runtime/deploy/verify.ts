/**
 * What a device checks before it stages a bundle: who signed it, that every part is the one the
 * manifest names, and that it fits this device (runtime version, target profiles, the shapes its
 * streams feed, no silent downgrade). Each failure is a DeployError whose reason goes on deploy/status.
 */
import semver from 'semver';
import type { SignatureVerifier } from '../telemetry/envelope.js';
import type { TrustLookup } from '../telemetry/commands.js';
import type { IOSpec } from '../model/load.js';
import type { Bundle } from './bundle.js';
import { DeployError } from './errors.js';
import { PART_NAMES, sha256Hex, type Manifest } from './manifest.js';
import { verifyManifestSignature, type Signer } from './signature.js';

/** Signature by a trusted key, then the sha256 and size of every part. */
export function verifyBundle(bundle: Bundle, trust: TrustLookup, verify?: SignatureVerifier): Signer {
  const signer = verifyManifestSignature(bundle.manifestBytes, bundle.signature, trust, verify);
  verifyParts(bundle.manifest, bundle.parts);
  return signer;
}

export function verifyParts(manifest: Manifest, parts: Record<(typeof PART_NAMES)[number], Uint8Array>): void {
  for (const name of PART_NAMES) {
    const want = manifest.parts[name];
    const got = parts[name];
    if (got.byteLength !== want.size) throw new DeployError('hash-mismatch', `${name} has ${got.byteLength} bytes, the manifest says ${want.size}`);
    const hash = sha256Hex(got);
    if (hash !== want.sha256) throw new DeployError('hash-mismatch', `${name} has sha256 ${hash.slice(0, 16)}…, the manifest says ${want.sha256.slice(0, 16)}…`);
  }
}

/** The manifest's inputs and outputs are the model's own (the fit checks and the self-test go by them). */
type Spec = Pick<IOSpec, 'name' | 'dims' | 'anyRank'> & { type: string };

export function checkDescribes(m: Manifest, model: { inputs: readonly Spec[]; outputs: readonly Spec[] }): void {
  const text = (specs: readonly Spec[]) => specs.map((s) => `${s.name} ${s.type}[${s.dims.join(', ')}]${s.anyRank ? ' (any rank)' : ''}`).join('; ');
  for (const side of ['inputs', 'outputs'] as const) {
    if (text(m.model[side]) !== text(model[side])) throw new DeployError('malformed', `manifest.json names ${side} ${text(m.model[side])}; model.onnx has ${text(model[side])}`);
  }
}

/** What the device is, for the fit checks. */
export interface DeviceFacts {
  runtimeVersion: string;
  /** The analog device profile, when the model would run on the accelerator. */
  profile?: string;
  /** Models the device serves: id → the input name and dims its streams feed (one entry per stream). */
  streamInputs(model: string): { name: string; dims: number[] }[] | undefined;
  /** The version now active for a model (undefined: the model the daemon was started with). */
  activeVersion(model: string): string | undefined;
}

export function checkFit(m: Manifest, device: DeviceFacts, allowDowngrade = false): void {
  if (semver.lt(device.runtimeVersion, m.minRuntime)) {
    throw new DeployError('runtime-too-old', `the bundle needs edgerun ≥ ${m.minRuntime}, this device runs ${device.runtimeVersion}`);
  }
  const feeds = device.streamInputs(m.model.id);
  if (feeds === undefined || feeds.length === 0) throw new DeployError('wrong-model', `no stream of this device uses a model '${m.model.id}'`);
  if (device.profile !== undefined && m.profiles.length > 0 && !m.profiles.includes(device.profile)) {
    throw new DeployError('profile', `the bundle targets profiles ${m.profiles.join(', ')}; this device's accelerator is '${device.profile}'`);
  }
  const input = m.model.inputs[0]!;
  for (const { name, dims } of feeds) {
    // Same name too: a request built for the old model may run on the new one right after the switch.
    if (input.name !== name) throw new DeployError('input-shape', `the model's input is named '${input.name}', the device's stream feeds '${name}'`);
    const fits = input.anyRank === true || (input.dims.length === dims.length && input.dims.every((d, i) => typeof d === 'string' || d === dims[i]));
    if (!fits) throw new DeployError('input-shape', `input '${input.name}' takes [${input.dims.join(', ')}], the device's stream feeds [${dims.join(', ')}]`);
  }
  const active = device.activeVersion(m.model.id);
  if (active !== undefined && !allowDowngrade) {
    if (semver.eq(m.model.version, active)) throw new DeployError('downgrade', `version ${active} of '${m.model.id}' is already active`);
    if (semver.lt(m.model.version, active)) throw new DeployError('downgrade', `${m.model.version} is older than the active ${active}; the deploy command must say allowDowngrade`);
  }
}
