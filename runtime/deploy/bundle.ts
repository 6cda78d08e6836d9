/**
 * The bundle file: a POSIX tar archive (tar-stream) of exactly these regular files, each at most once:
 *
 *   manifest.json         the manifest (./manifest.ts); the signature covers these exact bytes
 *   manifest.sig          {"type":"ed25519","publicKey":"<base64>","signature":"<base64>"} (absent until signed)
 *   model.onnx            the ONNX model
 *   canary-inputs.f32     canary inputs, float32 little-endian, count × inputShape
 *   canary-expected.f32   their digital outputs, float32 little-endian, count × outputShape
 *
 * Reading is defensive: any other name (paths, "..", links, devices), a duplicate, an entry larger
 * than its cap, an archive larger than maxBytes or one that ends early is refused with a one-line
 * DeployError before anything is used. Reading does not check hashes or the signature
 * (./verify.ts does).
 */
import tar from 'tar-stream';
import { DeployError } from './errors.js';
import { CANARY_EXPECTED_PART, CANARY_INPUTS_PART, MODEL_PART, parseManifest, type Manifest } from './manifest.js';

export const MANIFEST_ENTRY = 'manifest.json';
export const SIGNATURE_ENTRY = 'manifest.sig';
const ENTRIES = [MANIFEST_ENTRY, SIGNATURE_ENTRY, MODEL_PART, CANARY_INPUTS_PART, CANARY_EXPECTED_PART] as const;
type EntryName = (typeof ENTRIES)[number];

export interface BundleLimits {
  /** Largest archive accepted (bytes). */
  maxBytes: number;
  /** Largest model.onnx (bytes). */
  maxModelBytes: number;
}

/** Manifest and signature are small; canaries are a few thousand samples at most. */
const SMALL_CAPS: Record<Exclude<EntryName, typeof MODEL_PART>, number> = {
  [MANIFEST_ENTRY]: 1 << 20,
  [SIGNATURE_ENTRY]: 4096,
  [CANARY_INPUTS_PART]: 64 << 20,
  [CANARY_EXPECTED_PART]: 64 << 20,
};

export interface Bundle {
  /** The manifest.json bytes as stored (what the signature covers). */
  manifestBytes: Uint8Array;
  manifest: Manifest;
  /** The manifest.sig bytes, when signed. */
  signature?: Uint8Array;
  parts: { [MODEL_PART]: Uint8Array; [CANARY_INPUTS_PART]: Uint8Array; [CANARY_EXPECTED_PART]: Uint8Array };
}

/** Writes a bundle archive (entries in a fixed order, mtime 0: the same inputs give the same bytes). */
export async function packBundle(b: Omit<Bundle, 'manifest'>): Promise<Uint8Array> {
  const pack = tar.pack();
  const files: [EntryName, Uint8Array | undefined][] = [
    [MANIFEST_ENTRY, b.manifestBytes], [SIGNATURE_ENTRY, b.signature],
    [MODEL_PART, b.parts[MODEL_PART]], [CANARY_INPUTS_PART, b.parts[CANARY_INPUTS_PART]], [CANARY_EXPECTED_PART, b.parts[CANARY_EXPECTED_PART]],
  ];
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, data] of files) {
    if (data === undefined) continue;
    await new Promise<void>((resolve, reject) => pack.entry({ name, size: data.byteLength, mode: 0o644, mtime: new Date(0) }, Buffer.from(data), (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

function capOf(name: EntryName, limits: BundleLimits): number {
  return name === MODEL_PART ? limits.maxModelBytes : SMALL_CAPS[name];
}

/** Reads and checks the archive's structure and the manifest's schema. */
export async function readBundle(bytes: Uint8Array, limits: BundleLimits): Promise<Bundle> {
  if (bytes.byteLength > limits.maxBytes) throw new DeployError('too-large', `bundle of ${bytes.byteLength} bytes, more than the ${limits.maxBytes} accepted`);
  if (bytes.byteLength === 0) throw new DeployError('malformed', 'bundle is empty');
  const found = new Map<EntryName, Uint8Array>();
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const { name, type, size } = entry.header;
      if (name.includes('..') || name.includes('/') || name.includes('\\')) throw new DeployError('malformed', `bundle entry "${name}" is a path; only plain file names are allowed`);
      if (type !== 'file') throw new DeployError('malformed', `bundle entry "${name}" is a ${type}, only regular files are allowed`);
      if (!(ENTRIES as readonly string[]).includes(name)) throw new DeployError('malformed', `unexpected bundle entry "${name}" (expected ${ENTRIES.join(', ')})`);
      const known = name as EntryName;
      if (found.has(known)) throw new DeployError('malformed', `bundle entry "${name}" appears twice`);
      const cap = capOf(known, limits);
      if ((size ?? 0) > cap) throw new DeployError('too-large', `bundle entry "${name}" has ${size} bytes, more than the ${cap} accepted`);
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const data = new Uint8Array(Buffer.concat(chunks));
      if (data.byteLength !== size) throw new DeployError('malformed', `bundle entry "${name}" is truncated`);
      found.set(known, data);
    }
  })();
  extract.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  try {
    await reading;
  } catch (e) {
    if (e instanceof DeployError) throw e;
    throw new DeployError('malformed', `not a readable bundle archive: ${(e as Error).message}`);
  }
  for (const name of [MANIFEST_ENTRY, MODEL_PART, CANARY_INPUTS_PART, CANARY_EXPECTED_PART] as const) {
    if (!found.has(name)) throw new DeployError('malformed', `bundle has no ${name}`);
  }
  const manifestBytes = found.get(MANIFEST_ENTRY)!;
  const manifest = parseManifest(manifestBytes);
  return {
    manifestBytes, manifest, ...(found.has(SIGNATURE_ENTRY) ? { signature: found.get(SIGNATURE_ENTRY)! } : {}),
    parts: { [MODEL_PART]: found.get(MODEL_PART)!, [CANARY_INPUTS_PART]: found.get(CANARY_INPUTS_PART)!, [CANARY_EXPECTED_PART]: found.get(CANARY_EXPECTED_PART)! },
  };
}
