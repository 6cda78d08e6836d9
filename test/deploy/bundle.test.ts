/** Bundles: built from the real CNN with real onnxruntime outputs, signed, read back; hostile archives refused. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { packBundle, readBundle, type Bundle } from '../../runtime/deploy/bundle.js';
import { DeployError } from '../../runtime/deploy/errors.js';
import { signManifest } from '../../runtime/deploy/signature.js';
import { verifyBundle } from '../../runtime/deploy/verify.js';
import { fingerprint } from '../../runtime/telemetry/keys.js';
import { repoRoot } from '../helpers/cli.js';
import { signedBundle, trustOnly } from './signed-bundle.js';

const limits = { maxBytes: 8 << 20, maxModelBytes: 4 << 20 };
const key = nacl.sign.keyPair();
const stranger = nacl.sign.keyPair();
const trust = trustOnly(key);

let digital: DigitalBackend;
let unsigned: Uint8Array;
let signed: Uint8Array;
let bundle: Bundle;

beforeAll(async () => {
  digital = new DigitalBackend();
  ({ unsigned, signed, bundle } = await signedBundle({ model: 'cnn', version: '1.2.0', canaryCount: 16, labels: ['a', 'b'], profiles: ['pcm'], key, digital, limits }));
});
afterAll(async () => { await digital.dispose(); });

/** A tar of the given entries, written with tar-stream as an attacker could. */
async function rawTar(entries: { name: string; data?: Uint8Array; type?: 'file' | 'symlink'; linkname?: string }[]): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}), size: e.data?.byteLength ?? 0 }, Buffer.from(e.data ?? new Uint8Array(0)), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

const refusal = async (bytes: Uint8Array): Promise<DeployError> => {
  try {
    const b = await readBundle(bytes, limits);
    verifyBundle(b, trust);
  } catch (e) {
    expect(e).toBeInstanceOf(DeployError);
    expect((e as Error).message).not.toContain('\n');
    return e as DeployError;
  }
  throw new Error('the bundle was accepted');
};

describe('bundle', () => {
  it('holds the manifest, the model and canaries whose expected outputs are the digital ones; the signature verifies', async () => {
    const m = bundle.manifest;
    expect(m.model).toMatchObject({ id: 'cnn', version: '1.2.0' });
    expect(m.canary).toEqual({ count: 16, inputShape: [1, 28, 28], outputShape: [10] });
    expect(m.parts['model.onnx'].size).toBe(readFileSync(join(repoRoot, 'models/cnn.onnx')).byteLength);
    expect(bundle.parts['canary-expected.f32'].byteLength).toBe(16 * 10 * 4);
    expect(verifyBundle(bundle, trust)).toEqual({ name: 'operator', fingerprint: fingerprint(key.publicKey) });
    // Same inputs, same archive bytes: the pack is deterministic.
    const again = await readBundle(unsigned, limits);
    expect(Buffer.from(await packBundle({ ...again, signature: signManifest(again.manifestBytes, key) })).equals(Buffer.from(signed))).toBe(true);
  });

  it('refuses unsigned, stranger-signed and forged bundles', async () => {
    expect((await refusal(unsigned)).reason).toBe('unsigned');
    expect((await refusal(await packBundle({ ...bundle, signature: signManifest(bundle.manifestBytes, stranger) }))).reason).toBe('unknown-key');
    const edited = new TextEncoder().encode(new TextDecoder().decode(bundle.manifestBytes).replace('"1.2.0"', '"9.0.0"'));
    const forged = await refusal(await packBundle({ ...bundle, manifestBytes: edited }));
    expect(forged.reason).toBe('forged-signature');
  });

  it('refuses a model or canary part whose hash differs from the signed manifest', async () => {
    const model = new Uint8Array(bundle.parts['model.onnx']);
    model[model.length - 5]! ^= 0xff;
    const e = await refusal(await packBundle({ ...bundle, parts: { ...bundle.parts, 'model.onnx': model } }));
    expect(e.reason).toBe('hash-mismatch');
    expect(e.message).toMatch(/model\.onnx has sha256 .* the manifest says/);
    const shorter = bundle.parts['canary-expected.f32'].subarray(4);
    expect((await refusal(await packBundle({ ...bundle, parts: { ...bundle.parts, 'canary-expected.f32': shorter } }))).message).toMatch(/canary-expected\.f32 has \d+ bytes, the manifest says/);
  });

  it('refuses hostile archives with a one-line reason', async () => {
    const m = bundle.manifestBytes;
    const cases: [Promise<Uint8Array> | Uint8Array, RegExp][] = [
      [rawTar([{ name: '../../etc/passwd', data: m }]), /is a path/],
      [rawTar([{ name: '/abs/model.onnx', data: m }]), /is a path/],
      [rawTar([{ name: 'model.onnx', type: 'symlink', linkname: '/etc/shadow' }]), /only regular files/],
      [rawTar([{ name: 'manifest.json', data: m }, { name: 'manifest.json', data: m }]), /appears twice/],
      [rawTar([{ name: 'evil.sh', data: m }]), /unexpected bundle entry "evil.sh"/],
      [rawTar([{ name: 'manifest.json', data: m }]), /bundle has no model\.onnx/],
      [rawTar([{ name: 'manifest.json', data: new TextEncoder().encode('{"format":"edgerun-bundle/1"}') }, { name: 'model.onnx', data: m }, { name: 'canary-inputs.f32', data: m }, { name: 'canary-expected.f32', data: m }]), /manifest\.json: model: /],
      [signed.subarray(0, 3000), /truncated|not a readable bundle archive/],
      [new Uint8Array(0), /empty/],
      [new TextEncoder().encode('hello, this is not a tar archive at all'.repeat(20)), /not a readable bundle archive/],
    ];
    for (const [bytes, message] of cases) expect((await refusal(await bytes)).message).toMatch(message);
  });

  it('caps sizes: the archive, the model entry and the small entries', async () => {
    await expect(readBundle(signed, { ...limits, maxBytes: 1000 })).rejects.toThrow(/bundle of \d+ bytes, more than the 1000 accepted/);
    await expect(readBundle(signed, { ...limits, maxModelBytes: 1000 })).rejects.toThrow(/"model.onnx" has \d+ bytes, more than the 1000 accepted/);
    const big = await rawTar([{ name: 'manifest.sig', data: new Uint8Array(5000) }]);
    await expect(readBundle(big, limits)).rejects.toThrow(/"manifest.sig" has 5000 bytes, more than the 4096/);
  });
});
