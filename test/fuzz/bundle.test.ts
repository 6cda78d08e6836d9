/**
 * Property-based fuzzing (fast-check) of model bundles (runtime/deploy): a bundle arrives from the
 * network, so every byte of it is hostile until verified. Mutated and random archives must be
 * refused with a DeployError, never another kind of error; and whatever is accepted and verifies
 * must be exactly the bundle that was signed (same manifest, same parts).
 */
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { readBundle, type Bundle } from '../../runtime/deploy/bundle.js';
import { DeployError } from '../../runtime/deploy/errors.js';
import { parseManifest } from '../../runtime/deploy/manifest.js';
import { verifyBundle } from '../../runtime/deploy/verify.js';
import { signedBundle, trustOnly } from '../deploy/signed-bundle.js';

const RUNS = { numRuns: 150 };
const limits = { maxBytes: 4 << 20, maxModelBytes: 2 << 20 };
const key = nacl.sign.keyPair();
const trust = trustOnly(key);

let digital: DigitalBackend;
let signed: Uint8Array;
let original: Bundle;

beforeAll(async () => {
  digital = new DigitalBackend();
  ({ signed, bundle: original } = await signedBundle({ model: 'mlp', version: '1.0.0', canaryCount: 4, labels: [], profiles: [], key, digital, limits }));
});
afterAll(async () => { await digital.dispose(); });

/** Byte-level mutations of a valid archive: flips, truncation, inserted junk, or random bytes. */
function mutated(valid: () => Uint8Array): fc.Arbitrary<Uint8Array> {
  const flips = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
    .map((edits) => { const b = valid().slice(); for (const [at, v] of edits) b[Math.floor(at * b.length)] = v; return b; });
  const truncated = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }).map((at) => { const b = valid(); return b.subarray(0, Math.floor(at * b.length)); });
  const inserted = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.uint8Array({ minLength: 1, maxLength: 600 }))
    .map(([at, junk]) => { const b = valid(); const i = Math.floor(at * b.length); return Uint8Array.from([...b.subarray(0, i), ...junk, ...b.subarray(i)]); });
  return fc.oneof(flips, truncated, inserted, fc.uint8Array({ maxLength: 2048 }));
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe('model bundles', () => {
  it('a mutated or random archive is refused with a DeployError, or verifies as exactly the signed bundle', async () => {
    await fc.assert(fc.asyncProperty(mutated(() => signed), async (bytes) => {
      let bundle: Bundle;
      try {
        bundle = await readBundle(bytes, limits);
        verifyBundle(bundle, trust);
      } catch (e) {
        expect(e).toBeInstanceOf(DeployError);
        expect((e as Error).message).not.toContain('\n');
        return;
      }
      // Accepted: only bytes that do not matter (tar padding, header fields it ignores) may have changed.
      expect(same(bundle.manifestBytes, original.manifestBytes)).toBe(true);
      for (const [name, part] of Object.entries(original.parts)) expect(same(bundle.parts[name as keyof Bundle['parts']], part)).toBe(true);
    }), RUNS);
  });

  it('parseManifest: mutated and random manifest bytes parse or are refused with a DeployError', () => {
    fc.assert(fc.property(mutated(() => original.manifestBytes), (bytes) => {
      try {
        parseManifest(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(DeployError);
      }
    }), RUNS);
  });
});
