/**
 * Ed25519 keys (tweetnacl) for signed messages and commands, over the Storage port:
 *
 * - a key file holds one key pair as JSON
 *     {"type":"ed25519","name":"operator","publicKey":"<base64 32 bytes>","secretKey":"<base64 64 bytes>","created":"<ISO time>"}
 *   (tweetnacl's 64-byte secret key = 32-byte seed + public key). Stored with mode 0600 by the
 *   storage the caller gives (drivers/storage/fs-storage.ts with 0o600).
 * - a fingerprint names a public key in short: the first 16 hex digits of SHA-512(public key).
 * - the trust store is the list of public keys whose signatures are accepted on commands, each
 *   with a name: {"keys":[{"name","publicKey","fingerprint","added"}]}.
 *
 * Secrets never leave this module except as the SigningKey the envelope signs with.
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { parseJson } from '../json.js';
import type { Storage } from '../ports.js';
import { fromBase64, toBase64, toHex, type SigningKey } from './envelope.js';

/**
 * Key files and trust stores are read up to this size everywhere (the CLI's --key, the daemon's key
 * directory, the dashboard page's key loader): a planted huge one is refused before it is read.
 */
export const KEY_FILE_MAX_BYTES = 2 ** 20;

export class KeyError extends Error {
  override readonly name = 'KeyError';
}

const NAME = /^[A-Za-z0-9_.@-]+$/;
const nameSchema = z.string().min(1).max(64).regex(NAME, 'letters, digits, "_", ".", "@" and "-" only');
const base64Bytes = (n: number) => z.string().refine((s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && fromBase64(s).length === n, { message: `expected base64 of ${n} bytes` });

const keyFileSchema = z.object({
  type: z.literal('ed25519'),
  name: nameSchema.optional(),
  publicKey: base64Bytes(nacl.sign.publicKeyLength),
  secretKey: base64Bytes(nacl.sign.secretKeyLength),
  created: z.string().optional(),
});

const trustedKeySchema = z.strictObject({
  name: nameSchema,
  publicKey: base64Bytes(nacl.sign.publicKeyLength),
  fingerprint: z.string(),
  added: z.string().optional(),
});
const trustFileSchema = z.strictObject({ keys: z.array(trustedKeySchema) });

/** Throws a KeyError unless `name` can name a key (and its file, `<name>.key`). */
export function checkKeyName(name: string): string {
  const r = nameSchema.safeParse(name);
  if (!r.success) throw new KeyError(`invalid key name "${name}": 1 to 64 letters, digits, "_", ".", "@" and "-"`);
  return name;
}

export interface NamedKey extends SigningKey {
  name?: string;
}

export interface PublicKeyInfo {
  name?: string;
  publicKey: string;
  fingerprint: string;
}

export type TrustedKey = z.infer<typeof trustedKeySchema>;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function generateKeyPair(): SigningKey {
  const { publicKey, secretKey } = nacl.sign.keyPair();
  return { publicKey, secretKey };
}

/** First 16 hex digits of SHA-512 of the public key. */
export function fingerprint(publicKey: Uint8Array): string {
  return toHex(nacl.hash(publicKey).subarray(0, 8));
}

export function encodeKeyFile(key: SigningKey, name?: string, created = new Date()): Uint8Array {
  if (name !== undefined) checkKeyName(name);
  const file = { type: 'ed25519', ...(name === undefined ? {} : { name }), publicKey: toBase64(key.publicKey), secretKey: toBase64(key.secretKey), created: created.toISOString() };
  return utf8.encode(`${JSON.stringify(file, null, 2)}\n`);
}

/** JSON of a key or trust file (depth and prototype keys refused, runtime/json.ts), failing as a KeyError. */
function keyJson(text: string, source: string): unknown {
  try {
    return parseJson(text, source);
  } catch (e) {
    throw new KeyError((e as Error).message);
  }
}

/** Parses and checks a key file (the public key must be the secret key's). */
export function parseKeyFile(bytes: Uint8Array, source = 'key file'): NamedKey {
  const r = keyFileSchema.safeParse(keyJson(fromUtf8.decode(bytes), source));
  if (!r.success) throw new KeyError(`${source}: not an ed25519 key file: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const publicKey = fromBase64(r.data.publicKey);
  const secretKey = fromBase64(r.data.secretKey);
  const derived = nacl.sign.keyPair.fromSecretKey(secretKey).publicKey;
  if (!nacl.verify(derived, publicKey)) throw new KeyError(`${source}: the public key does not belong to the secret key`);
  return { publicKey, secretKey, ...(r.data.name === undefined ? {} : { name: r.data.name }) };
}

export function publicInfo(publicKey: Uint8Array, name?: string): PublicKeyInfo {
  return { ...(name === undefined ? {} : { name }), publicKey: toBase64(publicKey), fingerprint: fingerprint(publicKey) };
}

/**
 * A public key from what a user hands over: base64 of the 32 bytes, or the text of a key file /
 * of `edgerun keys show --json` (anything JSON with a "publicKey" field). Only the public part is used.
 */
export function parsePublicKey(text: string, source = 'public key'): { publicKey: Uint8Array; name?: string } {
  const t = text.trim();
  if (t.startsWith('{')) {
    const r = z.object({ publicKey: base64Bytes(nacl.sign.publicKeyLength), name: nameSchema.optional() }).safeParse(keyJson(t, source));
    if (!r.success) throw new KeyError(`${source}: needs a "publicKey" field with base64 of ${nacl.sign.publicKeyLength} bytes`);
    return { publicKey: fromBase64(r.data.publicKey), ...(r.data.name === undefined ? {} : { name: r.data.name }) };
  }
  if (!base64Bytes(nacl.sign.publicKeyLength).safeParse(t).success) {
    throw new KeyError(`${source}: expected base64 of a ${nacl.sign.publicKeyLength}-byte ed25519 public key, or a key file`);
  }
  return { publicKey: fromBase64(t) };
}

/** Key pairs in files of a storage (create it with mode 0600). */
export class KeyStore {
  constructor(private readonly storage: Storage) {}

  /** Generates a key pair into `file`; refuses to replace an existing one unless `force`. */
  async generate(file: string, options: { name?: string; force?: boolean } = {}): Promise<NamedKey> {
    if (!options.force && (await this.storage.read(file)) !== undefined) {
      throw new KeyError(`key file '${file}' already exists; use --force to replace it (the old key is lost)`);
    }
    const key = generateKeyPair();
    await this.storage.writeAtomic(file, encodeKeyFile(key, options.name));
    return { ...key, ...(options.name === undefined ? {} : { name: options.name }) };
  }

  async load(file: string): Promise<NamedKey> {
    const bytes = await this.storage.read(file);
    if (bytes === undefined) throw new KeyError(`no key file '${file}' (create one with \`edgerun keys gen\`)`);
    return parseKeyFile(bytes, `key file '${file}'`);
  }

  /** The key in `file`, generated on first use (a device's own key). */
  async loadOrGenerate(file: string, name?: string): Promise<NamedKey> {
    return (await this.storage.read(file)) === undefined ? this.generate(file, { name }) : this.load(file);
  }
}

/** The public keys trusted to sign commands, by name, in one file of a storage. */
export class TrustStore {
  #keys: TrustedKey[] = [];
  #byKey = new Map<string, TrustedKey>();

  private constructor(private readonly storage: Storage, readonly file: string) {}

  static async open(storage: Storage, file = 'trusted-keys.json'): Promise<TrustStore> {
    const t = new TrustStore(storage, file);
    await t.reload();
    return t;
  }

  /** Re-reads the file (a missing file is an empty store). */
  async reload(): Promise<void> {
    const bytes = await this.storage.read(this.file);
    if (bytes === undefined) {
      this.#set([]);
      return;
    }
    const r = trustFileSchema.safeParse(keyJson(fromUtf8.decode(bytes), `trust store '${this.file}'`));
    if (!r.success) throw new KeyError(`trust store '${this.file}': ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    this.#set(r.data.keys);
  }

  list(): readonly TrustedKey[] {
    return this.#keys;
  }

  /** The trusted entry of a public key, or undefined. */
  trusted(publicKey: Uint8Array): TrustedKey | undefined {
    return this.#byKey.get(toBase64(publicKey));
  }

  /**
   * Trusts a key under a name. The same key again renames it; a name already held by another key
   * is refused unless `replace` (then that key is no longer trusted).
   */
  async add(name: string, publicKey: Uint8Array, options: { replace?: boolean; now?: Date } = {}): Promise<TrustedKey> {
    checkKeyName(name);
    if (publicKey.length !== nacl.sign.publicKeyLength) throw new KeyError(`a public key has ${nacl.sign.publicKeyLength} bytes, got ${publicKey.length}`);
    const b64 = toBase64(publicKey);
    const holder = this.#keys.find((k) => k.name === name);
    if (holder && holder.publicKey !== b64 && !options.replace) {
      throw new KeyError(`the name '${name}' already belongs to key ${holder.fingerprint}; use --force to replace it`);
    }
    const entry: TrustedKey = { name, publicKey: b64, fingerprint: fingerprint(publicKey), added: (options.now ?? new Date()).toISOString() };
    await this.#save([...this.#keys.filter((k) => k.name !== name && k.publicKey !== b64), entry]);
    return entry;
  }

  /** Stops trusting the key with this name or fingerprint; false when there is none. */
  async remove(nameOrFingerprint: string): Promise<boolean> {
    const keep = this.#keys.filter((k) => k.name !== nameOrFingerprint && k.fingerprint !== nameOrFingerprint);
    if (keep.length === this.#keys.length) return false;
    await this.#save(keep);
    return true;
  }

  async #save(keys: TrustedKey[]): Promise<void> {
    await this.storage.writeAtomic(this.file, utf8.encode(`${JSON.stringify({ keys }, null, 2)}\n`));
    this.#set(keys);
  }

  #set(keys: TrustedKey[]): void {
    this.#keys = keys;
    this.#byKey = new Map(keys.map((k) => [k.publicKey, k]));
  }
}
