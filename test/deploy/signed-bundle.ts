/** A real bundle for tests: built from a committed model with onnxruntime's outputs as canaries, then signed. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type nacl from 'tweetnacl';
import type { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { parseDataset } from '../../runtime/dataset.js';
import { buildBundle } from '../../runtime/deploy/build.js';
import { packBundle, readBundle, type Bundle } from '../../runtime/deploy/bundle.js';
import { signManifest } from '../../runtime/deploy/signature.js';
import { loadModel } from '../../runtime/model/load.js';
import type { TrustLookup } from '../../runtime/telemetry/commands.js';
import { fingerprint } from '../../runtime/telemetry/keys.js';
import { repoRoot } from '../helpers/cli.js';

export interface SignedBundle { unsigned: Uint8Array; signed: Uint8Array; bundle: Bundle }

export async function signedBundle(o: {
  model: 'cnn' | 'mlp'; version: string;
  /** The bundle's model id (default: the model's name). */
  id?: string; canaryCount: number; labels: string[]; profiles: string[];
  key: nacl.SignKeyPair; digital: DigitalBackend; limits: { maxBytes: number; maxModelBytes: number };
}): Promise<SignedBundle> {
  const model = loadModel(new Uint8Array(readFileSync(join(repoRoot, `models/${o.model}.onnx`))), { source: `${o.model}.onnx` });
  const canary = parseDataset(new Uint8Array(readFileSync(join(repoRoot, 'models/data/canary-64.bin'))));
  const unsigned = await buildBundle({
    id: o.id ?? o.model, version: o.version, model, digital: o.digital, canary, canaryCount: o.canaryCount, labels: o.labels, profiles: o.profiles,
    minRuntime: '0.1.0', minAgreement: 0.9, minCosine: 0.97,
  });
  const b = await readBundle(unsigned, o.limits);
  const signed = await packBundle({ ...b, signature: signManifest(b.manifestBytes, o.key) });
  return { unsigned, signed, bundle: await readBundle(signed, o.limits) };
}

/** A trust store holding only `key`, named 'operator'. */
export const trustOnly = (key: nacl.SignKeyPair): TrustLookup => ({
  trusted: (k: Uint8Array) => (Buffer.from(k).equals(Buffer.from(key.publicKey)) ? { name: 'operator', fingerprint: fingerprint(k) } : undefined),
});
