/**
 * The payload of every edgerun MQTT message, in and out.
 *
 * A message is `{ device, session, seq, ts, kind, body }`: `session` names one run of the device
 * process (a random id chosen at every start, like Sparkplug B's bdSeq), `seq` is monotonic within
 * it (and, while the state dir lives, across sessions), so consumers dedupe on (device, session,
 * seq) and a device whose state was wiped (seq back at 0) is a new session, not a replay. `ts` is
 * wall-clock milliseconds since the epoch. `session` is optional on input: messages of older
 * devices (and commands, which are deduped by nonce) have none. Encoded as JSON (default) or CBOR.
 *
 * Signed (ed25519, tweetnacl), the message bytes travel inside an envelope with the signer's public
 * key and the detached signature over exactly those bytes:
 *   JSON: {"msg": "<the message's JSON text>", "key": "<base64 public key>", "sig": "<base64 signature>"}
 *   CBOR: {msg: <message CBOR bytes>, key: <32 bytes>, sig: <64 bytes>}
 * A decoder takes the MQTT 5 content type when it names one of the two (application/json,
 * application/cbor, parameters allowed); otherwise (MQTT 3.1.1, foreign publishers) the first byte
 * after an optional UTF-8 BOM and JSON whitespace tells: '{' is JSON, anything else CBOR (a CBOR
 * map never starts with whitespace or '{').
 *
 * Whether a valid signature's key is *trusted* is the caller's decision (runtime/telemetry keys).
 */
import nacl from 'tweetnacl';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { transientUtf8 } from '../transient-bytes.js';

export interface Message<B = unknown> {
  device: string;
  /** The device process run that sent it (absent on commands and on messages of older devices). */
  session?: string;
  seq: number;
  ts: number;
  kind: string;
  body: B;
}

export type Encoding = 'json' | 'cbor';
export const CONTENT_TYPE: Readonly<Record<Encoding, string>> = { json: 'application/json', cbor: 'application/cbor' };

/** An ed25519 key pair as tweetnacl makes it (secretKey is 64 bytes: seed + public key). */
export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /**
   * Optional faster signer with the same result (ed25519 is deterministic), e.g. node:crypto from
   * drivers/crypto/ed25519.ts: tweetnacl's pure-JS signing costs milliseconds per message.
   */
  sign?: (message: Uint8Array) => Uint8Array;
}

const signDetached = (bytes: Uint8Array, signer: SigningKey): Uint8Array =>
  signer.sign ? signer.sign(bytes) : nacl.sign.detached(bytes, signer.secretKey);

export interface EncodeOptions {
  encoding?: Encoding;
  signer?: SigningKey;
  /**
   * The bytes are copied and dropped at once (into a journal record): unsigned JSON may then come
   * from a shared slab (runtime/transient-bytes.ts) instead of an ArrayBuffer of its own.
   */
  transient?: boolean;
}

export interface DecodedMessage<B = unknown> {
  message: Message<B>;
  encoding: Encoding;
  /** Public key whose signature over the message verified; undefined for unsigned messages. */
  signedBy?: Uint8Array;
}

export type EnvelopeErrorCode = 'too-large' | 'malformed' | 'bad-signature';

export class EnvelopeError extends Error {
  constructor(readonly code: EnvelopeErrorCode, message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const CBOR_OPTIONS = { ignoreUndefinedProperties: true } as const;
const OPEN_BRACE = 0x7b;
/** JSON's insignificant whitespace (RFC 8259 §2). */
const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
/** A session id: what a random hex id or a boot counter looks like, bounded. */
const SESSION = /^[A-Za-z0-9_-]{1,64}$/;

// Without Buffer: this module (with keys.ts, build-command.ts and listener.ts) also runs in the dashboard's page.
/** Standard base64 with padding. */
export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return btoa(s);
}
/** Decodes standard base64; text that is not base64 decodes to no bytes (callers check the length they expect). */
export function fromBase64(s: string): Uint8Array {
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}
export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export function encodeMessage(message: Message, opts: EncodeOptions = {}): Uint8Array {
  const encoding = opts.encoding ?? 'json';
  if (encoding === 'json') {
    const text = JSON.stringify(message);
    if (!opts.signer) return opts.transient ? transientUtf8(text) : utf8.encode(text);
    const sig = signDetached(transientUtf8(text), opts.signer);
    return utf8.encode(JSON.stringify({ msg: text, key: toBase64(opts.signer.publicKey), sig: toBase64(sig) }));
  }
  const bytes = cborEncode(message, CBOR_OPTIONS);
  if (!opts.signer) return bytes;
  const sig = signDetached(bytes, opts.signer);
  return cborEncode({ msg: bytes, key: opts.signer.publicKey, sig }, CBOR_OPTIONS);
}

/** Checks a detached ed25519 signature; drivers/crypto/ed25519.ts has a faster one than tweetnacl's. */
export type SignatureVerifier = (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => boolean;
export const naclVerify: SignatureVerifier = (message, signature, publicKey) => nacl.sign.detached.verify(message, signature, publicKey);

/** The encoding a payload is in: the MQTT 5 content type when it names one, else its first significant byte. */
export function encodingOf(payload: Uint8Array, contentType?: string): Encoding {
  const type = contentType?.split(';')[0]!.trim().toLowerCase();
  if (type === CONTENT_TYPE.json) return 'json';
  if (type === CONTENT_TYPE.cbor) return 'cbor';
  let i = payload[0] === 0xef && payload[1] === 0xbb && payload[2] === 0xbf ? 3 : 0;
  while (i < payload.length && JSON_SPACE.has(payload[i]!)) i++;
  return payload[i] === OPEN_BRACE ? 'json' : 'cbor';
}

/**
 * Parses and checks a payload; throws EnvelopeError (never anything else) on bad input.
 * `contentType`: the MQTT 5 content type it came with, if any.
 */
export function decodeMessage<B = unknown>(payload: Uint8Array, maxBytes = 256 * 1024, verify: SignatureVerifier = naclVerify, contentType?: string): DecodedMessage<B> {
  if (payload.byteLength > maxBytes) throw new EnvelopeError('too-large', `payload of ${payload.byteLength} bytes exceeds the limit of ${maxBytes}`);
  if (payload.byteLength === 0) throw new EnvelopeError('malformed', 'empty payload');
  const encoding = encodingOf(payload, contentType);
  let outer: unknown;
  try {
    // TextDecoder drops a leading BOM; JSON.parse skips whitespace.
    outer = encoding === 'json' ? JSON.parse(fromUtf8.decode(payload)) : cborDecode(payload);
  } catch (e) {
    throw new EnvelopeError('malformed', `not valid ${encoding.toUpperCase()}: ${(e as Error).message}`);
  }
  if (!isRecord(outer)) throw new EnvelopeError('malformed', `expected an object, got ${describe(outer)}`);
  if (!('sig' in outer)) return { message: checkMessage<B>(outer), encoding };

  const { msg, key, sig } = outer;
  let msgBytes: Uint8Array, keyBytes: Uint8Array, sigBytes: Uint8Array;
  if (encoding === 'json') {
    if (typeof msg !== 'string' || typeof key !== 'string' || typeof sig !== 'string') {
      throw new EnvelopeError('malformed', 'signed envelope needs string fields msg, key and sig');
    }
    msgBytes = utf8.encode(msg);
    keyBytes = fromBase64(key);
    sigBytes = fromBase64(sig);
  } else {
    if (!(msg instanceof Uint8Array) || !(key instanceof Uint8Array) || !(sig instanceof Uint8Array)) {
      throw new EnvelopeError('malformed', 'signed envelope needs byte-string fields msg, key and sig');
    }
    [msgBytes, keyBytes, sigBytes] = [msg, key, sig];
  }
  if (keyBytes.length !== nacl.sign.publicKeyLength) throw new EnvelopeError('malformed', `signer key must be ${nacl.sign.publicKeyLength} bytes, got ${keyBytes.length}`);
  if (sigBytes.length !== nacl.sign.signatureLength) throw new EnvelopeError('malformed', `signature must be ${nacl.sign.signatureLength} bytes, got ${sigBytes.length}`);
  if (!verify(msgBytes, sigBytes, keyBytes)) throw new EnvelopeError('bad-signature', 'signature does not verify');
  let inner: unknown;
  try {
    inner = encoding === 'json' ? JSON.parse(msg as string) : cborDecode(msgBytes);
  } catch (e) {
    throw new EnvelopeError('malformed', `signed message is not valid ${encoding.toUpperCase()}: ${(e as Error).message}`);
  }
  if (!isRecord(inner)) throw new EnvelopeError('malformed', `expected a message object, got ${describe(inner)}`);
  return { message: checkMessage<B>(inner), encoding, signedBy: keyBytes };
}

function checkMessage<B>(o: Record<string, unknown>): Message<B> {
  const { device, session, seq, ts, kind } = o;
  if (typeof device !== 'string' || device.length === 0) throw new EnvelopeError('malformed', 'message needs a non-empty string "device"');
  if (session !== undefined && (typeof session !== 'string' || !SESSION.test(session))) throw new EnvelopeError('malformed', '"session" must be 1–64 letters, digits, "_" or "-"');
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new EnvelopeError('malformed', 'message needs a non-negative integer "seq"');
  if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new EnvelopeError('malformed', 'message needs a numeric "ts" (ms since the epoch)');
  if (typeof kind !== 'string' || kind.length === 0) throw new EnvelopeError('malformed', 'message needs a non-empty string "kind"');
  if (!('body' in o)) throw new EnvelopeError('malformed', 'message needs a "body"');
  return { device, ...(session !== undefined ? { session } : {}), seq, ts, kind, body: o.body as B };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
