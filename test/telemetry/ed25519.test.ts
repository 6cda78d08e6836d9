/** node:crypto ed25519 (drivers/crypto/ed25519.ts) against tweetnacl: same signatures, same verdicts. */
import { describe, expect, it } from 'vitest';
import nacl from 'tweetnacl';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { nativeSigner, nativeVerify } from '../../drivers/crypto/ed25519.js';
import { decodeMessage, encodeMessage, EnvelopeError, naclVerify } from '../../runtime/telemetry/envelope.js';

describe('native ed25519', () => {
  const key = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
  const other = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(8));
  const message = new TextEncoder().encode('{"device":"d","seq":1}');

  it('signs exactly as tweetnacl does', () => {
    expect(Array.from(nativeSigner(key).sign!(message))).toEqual(Array.from(nacl.sign.detached(message, key.secretKey)));
  });

  it('verifies as tweetnacl does: valid, tampered, wrong key, malformed key or signature', () => {
    const sig = nacl.sign.detached(message, key.secretKey);
    const tampered = sig.slice();
    tampered[10]! ^= 1;
    const cases: [Uint8Array, Uint8Array, Uint8Array][] = [
      [message, sig, key.publicKey],
      [message, tampered, key.publicKey],
      [message, sig, other.publicKey],
      [message.slice(1), sig, key.publicKey],
      [message, sig, new Uint8Array(32)],
      [message, sig.slice(0, 63), key.publicKey],
    ];
    for (const [m, s, k] of cases) expect(nativeVerify(m, s, k)).toBe(s.length === 64 ? naclVerify(m, s, k) : false);
    expect(nativeVerify(message, sig, key.publicKey)).toBe(true);
  });

  it('decodeMessage with the native verifier accepts signed envelopes and refuses forged ones', () => {
    for (const encoding of ['json', 'cbor'] as const) {
      const payload = encodeMessage({ device: 'd', seq: 3, ts: 1, kind: 'results', body: { x: 1 } }, { encoding, signer: key });
      expect(decodeMessage(payload, 1 << 20, nativeVerify).signedBy).toEqual(key.publicKey);
      // The same envelope claiming another signer's key: the signature no longer matches.
      const envelope = encoding === 'json' ? JSON.parse(new TextDecoder().decode(payload)) : cborDecode(payload);
      envelope.key = encoding === 'json' ? Buffer.from(other.publicKey).toString('base64') : other.publicKey;
      const forged = encoding === 'json' ? new TextEncoder().encode(JSON.stringify(envelope)) : cborEncode(envelope);
      expect(() => decodeMessage(forged, 1 << 20, nativeVerify)).toThrow(expect.objectContaining({ code: 'bad-signature' }));
      expect(() => decodeMessage(forged, 1 << 20, naclVerify)).toThrow(EnvelopeError);
    }
  });
});
