/**
 * The bundle's signature: ed25519 over the exact manifest.json bytes, with the key pair format of
 * the signed commands (runtime/telemetry/keys.ts). Since the manifest names every part's sha256 and
 * size, the signature covers the whole bundle.
 *
 *   manifest.sig = {"type":"ed25519","publicKey":"<base64 32 bytes>","signature":"<base64 64 bytes>"}
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { fromBase64, naclVerify, toBase64, type SignatureVerifier, type SigningKey } from '../telemetry/envelope.js';
import { fingerprint } from '../telemetry/keys.js';
import type { TrustLookup } from '../telemetry/commands.js';
import { DeployError } from './errors.js';
import { parseJson } from '../json.js';

const sigSchema = z.strictObject({
  type: z.literal('ed25519'),
  publicKey: z.string().max(64),
  signature: z.string().max(128),
});

export function signManifest(manifestBytes: Uint8Array, key: SigningKey): Uint8Array {
  const signature = key.sign ? key.sign(manifestBytes) : nacl.sign.detached(manifestBytes, key.secretKey);
  return new TextEncoder().encode(`${JSON.stringify({ type: 'ed25519', publicKey: toBase64(key.publicKey), signature: toBase64(signature) })}\n`);
}

export interface Signer {
  name: string;
  fingerprint: string;
}

/** The signer's public key and signature as the file claims them (checking nothing). */
export function parseSignature(sig: Uint8Array): { publicKey: Uint8Array; signature: Uint8Array } {
  let json: unknown;
  try {
    json = parseJson(new TextDecoder().decode(sig), 'manifest.sig');
  } catch {
    throw new DeployError('malformed', 'manifest.sig is not valid JSON');
  }
  const r = sigSchema.safeParse(json);
  if (!r.success) throw new DeployError('malformed', 'manifest.sig is not {"type":"ed25519","publicKey","signature"}');
  const publicKey = fromBase64(r.data.publicKey);
  const signature = fromBase64(r.data.signature);
  if (publicKey.length !== nacl.sign.publicKeyLength || signature.length !== nacl.sign.signatureLength) throw new DeployError('malformed', 'manifest.sig holds a key or signature of the wrong length');
  return { publicKey, signature };
}

/**
 * Checks that a trusted key signed these manifest bytes. Unknown keys are refused before the
 * signature check (as for commands: strangers get no costly work).
 */
export function verifyManifestSignature(manifestBytes: Uint8Array, sig: Uint8Array | undefined, trust: TrustLookup, verify: SignatureVerifier = naclVerify): Signer {
  if (sig === undefined) throw new DeployError('unsigned', 'the bundle is not signed (edgerun deploy sign)');
  const { publicKey, signature } = parseSignature(sig);
  const trusted = trust.trusted(publicKey);
  if (!trusted) throw new DeployError('unknown-key', `the bundle is signed by key ${fingerprint(publicKey)}, which this device does not trust`);
  if (!verify(manifestBytes, signature, publicKey)) throw new DeployError('forged-signature', `the signature of key ${trusted.name} (${trusted.fingerprint}) does not match the manifest`);
  return { name: trusted.name, fingerprint: trusted.fingerprint };
}
