/** Keys and the trust store on real files, and `edgerun keys ...` as a real CLI subprocess. */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { fromBase64, toBase64 } from '../../runtime/telemetry/envelope.js';
import { KeyError, KeyStore, TrustStore, fingerprint, parseKeyFile, parsePublicKey } from '../../runtime/telemetry/keys.js';
import { ReplayMemory } from '../../runtime/telemetry/commands.js';
import { edgerun, lastJson } from '../helpers/cli.js';

// Real CLI subprocesses (tsx start-up each) on 2 shared cores: a generous bound, not a speed claim.
vi.setConfig({ testTimeout: 180_000 });

const root = mkdtempSync(join(tmpdir(), 'edgerun-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `d${n++}`);
const mode = (path: string): number => statSync(path).mode & 0o777;

describe('keys (runtime)', () => {
  it('generates a key file with mode 0600 that loads back to a working key pair, and refuses to overwrite it without force', async () => {
    const dir = freshDir();
    const store = new KeyStore(new FsStorage(dir, 0o600));
    const key = await store.generate('device.key', { name: 'dev' });
    expect(mode(join(dir, 'device.key'))).toBe(0o600);
    const loaded = await store.load('device.key');
    expect(loaded.name).toBe('dev');
    expect(toBase64(loaded.publicKey)).toBe(toBase64(key.publicKey));
    const sig = nacl.sign.detached(new Uint8Array([1, 2, 3]), loaded.secretKey);
    expect(nacl.sign.detached.verify(new Uint8Array([1, 2, 3]), sig, key.publicKey)).toBe(true);

    await expect(store.generate('device.key')).rejects.toThrow(/already exists.*--force/);
    expect(toBase64((await store.load('device.key')).publicKey)).toBe(toBase64(key.publicKey));
    const replaced = await store.generate('device.key', { force: true });
    expect(toBase64(replaced.publicKey)).not.toBe(toBase64(key.publicKey));
  });

  it('fingerprints are 16 hex digits of SHA-512(public key)', () => {
    const { publicKey } = nacl.sign.keyPair();
    expect(fingerprint(publicKey)).toBe(Buffer.from(nacl.hash(publicKey)).toString('hex').slice(0, 16));
  });

  it('rejects key files that are not JSON, of the wrong shape, or whose public key is not the secret key\'s', () => {
    const a = nacl.sign.keyPair();
    const b = nacl.sign.keyPair();
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    expect(() => parseKeyFile(new TextEncoder().encode('nope'))).toThrow(KeyError);
    expect(() => parseKeyFile(enc({ type: 'rsa', publicKey: toBase64(a.publicKey), secretKey: toBase64(a.secretKey) }))).toThrow(KeyError);
    expect(() => parseKeyFile(enc({ type: 'ed25519', publicKey: toBase64(a.publicKey), secretKey: 'AAAA' }))).toThrow(/64 bytes/);
    expect(() => parseKeyFile(enc({ type: 'ed25519', publicKey: toBase64(b.publicKey), secretKey: toBase64(a.secretKey) }))).toThrow(/does not belong/);
    expect(parseKeyFile(enc({ type: 'ed25519', publicKey: toBase64(a.publicKey), secretKey: toBase64(a.secretKey) })).publicKey).toEqual(a.publicKey);
  });

  it('refuses key, trust and replay files with prototype keys or hostile nesting, naming the file', async () => {
    const a = nacl.sign.keyPair();
    const key = { type: 'ed25519', publicKey: toBase64(a.publicKey), secretKey: toBase64(a.secretKey) };
    const enc = (t: string): Uint8Array => new TextEncoder().encode(t);
    expect(() => parseKeyFile(enc(JSON.stringify(key).replace('{', '{"__proto__":{"name":"x"},')), 'k.key')).toThrow(/^k\.key: key "__proto__" is not allowed/);
    expect(() => parseKeyFile(enc(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), 'deep.key')).toThrow(KeyError);
    const storage = new FsStorage(freshDir(), 0o600);
    await storage.writeAtomic('trusted-keys.json', enc('{"keys":[],"constructor":{}}'));
    await expect(TrustStore.open(storage)).rejects.toThrow(/^trust store 'trusted-keys\.json': key "constructor" is not allowed/);
    await storage.writeAtomic('command-replay.json', enc('{"v":1,"entries":[],"__proto__":{}}'));
    await expect(ReplayMemory.open(storage)).rejects.toThrow(/^replay state 'command-replay\.json': key "__proto__" is not allowed/);
    await storage.close();
  });

  it('parses public keys from base64 or JSON, and refuses anything else', () => {
    const { publicKey } = nacl.sign.keyPair();
    expect(parsePublicKey(toBase64(publicKey)).publicKey).toEqual(publicKey);
    expect(parsePublicKey(JSON.stringify({ name: 'x', publicKey: toBase64(publicKey) }))).toEqual({ name: 'x', publicKey });
    expect(() => parsePublicKey('short')).toThrow(KeyError);
    expect(() => parsePublicKey(toBase64(new Uint8Array(31)))).toThrow(KeyError);
    expect(() => parsePublicKey('{"publicKey": 3}')).toThrow(KeyError);
  });

  it('trust store: add, rename, name conflicts, remove, persisted (0600)', async () => {
    const dir = freshDir();
    const storage = new FsStorage(dir, 0o600);
    const t = await TrustStore.open(storage);
    const a = nacl.sign.keyPair().publicKey;
    const b = nacl.sign.keyPair().publicKey;
    await t.add('alice', a);
    expect(t.trusted(a)?.name).toBe('alice');
    expect(t.trusted(b)).toBeUndefined();
    await expect(t.add('alice', b)).rejects.toThrow(/already belongs/);
    await t.add('ops', a); // same key, new name
    expect(t.list().map((k) => k.name)).toEqual(['ops']);
    await t.add('ops', b, { replace: true });
    expect(t.trusted(a)).toBeUndefined();
    expect(t.trusted(b)?.name).toBe('ops');
    expect(mode(join(dir, 'trusted-keys.json'))).toBe(0o600);
    const reopened = await TrustStore.open(new FsStorage(dir, 0o600));
    expect(reopened.trusted(b)?.fingerprint).toBe(fingerprint(b));
    expect(await reopened.remove(fingerprint(b))).toBe(true);
    expect(await reopened.remove('ops')).toBe(false);
    expect((await TrustStore.open(storage)).list()).toEqual([]);
  });
});

describe('edgerun keys (CLI)', () => {
  it('gen writes a 0600 key file, refuses to overwrite without --force, show prints only the public part', async () => {
    const dir = freshDir();
    const gen = await edgerun(['keys', 'gen', '--dir', dir, '--name', 'operator', '--json']);
    expect(gen.code, gen.stderr).toBe(0);
    const info = lastJson(gen.stdout);
    const file = join(dir, 'operator.key');
    expect(info).toMatchObject({ name: 'operator', file });
    expect(mode(file)).toBe(0o600);
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; secretKey: string };
    expect(info.publicKey).toBe(onDisk.publicKey);
    expect(info.fingerprint).toBe(fingerprint(fromBase64(onDisk.publicKey)));

    const again = await edgerun(['keys', 'gen', '--dir', dir, '--name', 'operator']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists.*--force/);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(onDisk);

    const show = await edgerun(['keys', 'show', '--dir', dir, '--name', 'operator']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(onDisk.publicKey);
    expect(show.stdout).toContain(fingerprint(fromBase64(onDisk.publicKey)));
    expect(show.stdout).not.toContain(onDisk.secretKey);
    expect(show.stdout).not.toContain(onDisk.secretKey.slice(0, 40));

    const badName = await edgerun(['keys', 'gen', '--dir', dir, '--name', '../evil']);
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toMatch(/invalid key name/);
    const nowhere = join(root, 'nowhere');
    const missing = await edgerun(['keys', 'show', '--dir', nowhere]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no key directory/);
    expect(existsSync(nowhere)).toBe(false);

    const forced = await edgerun(['keys', 'gen', '--dir', dir, '--name', 'operator', '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(lastJson(forced.stdout).publicKey).not.toBe(onDisk.publicKey);
    expect(mode(file)).toBe(0o600);
  });

  it('the default key directory and file come from the config', async () => {
    const dir = freshDir();
    const config = join(root, `config-${n}.json`);
    writeFileSync(config, JSON.stringify({ security: { keyDir: dir, keyFile: 'me.key' } }));
    const gen = await edgerun(['--config', config, 'keys', 'gen', '--json']);
    expect(gen.code, gen.stderr).toBe(0);
    expect(lastJson(gen.stdout).file).toBe(join(dir, 'me.key'));
    expect(mode(join(dir, 'me.key'))).toBe(0o600);
    const env = await edgerun(['keys', 'show', '--json', '--file', 'me.key'], { EDGERUN_SECURITY__KEY_DIR: dir });
    expect(env.code, env.stderr).toBe(0);
    expect(lastJson(env.stdout).publicKey).toBe(lastJson(gen.stdout).publicKey);
  });

  it('trust takes a base64 key or a key file (public part only), list shows the trust store', async () => {
    const operatorDir = freshDir();
    const deviceDir = freshDir();
    expect((await edgerun(['keys', 'gen', '--dir', operatorDir, '--name', 'op'])).code).toBe(0);
    const other = nacl.sign.keyPair().publicKey;

    const byFile = await edgerun(['keys', 'trust', join(operatorDir, 'op.key'), '--dir', deviceDir, '--json']);
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(lastJson(byFile.stdout)).toMatchObject({ name: 'op' });
    const byB64 = await edgerun(['keys', 'trust', toBase64(other), '--name', 'ci', '--dir', deviceDir]);
    expect(byB64.code, byB64.stderr).toBe(0);
    const noName = await edgerun(['keys', 'trust', toBase64(nacl.sign.keyPair().publicKey), '--dir', deviceDir]);
    expect(noName.code).not.toBe(0);
    expect(noName.stderr).toMatch(/--name/);
    const bad = await edgerun(['keys', 'trust', 'not-a-key', '--name', 'x', '--dir', deviceDir]);
    expect(bad.code).not.toBe(0);

    const trustFile = join(deviceDir, 'trusted-keys.json');
    expect(mode(trustFile)).toBe(0o600);
    expect(readFileSync(trustFile, 'utf8')).not.toContain('secretKey');
    const list = await edgerun(['keys', 'list', '--dir', deviceDir, '--json']);
    expect(list.code, list.stderr).toBe(0);
    const keys = (lastJson(list.stdout).keys as { name: string; publicKey: string }[]);
    expect(keys.map((k) => k.name).sort()).toEqual(['ci', 'op']);
    expect(keys.find((k) => k.name === 'ci')!.publicKey).toBe(toBase64(other));
    const table = await edgerun(['keys', 'list', '--dir', deviceDir]);
    expect(table.stdout).toContain(fingerprint(other));

    expect((await edgerun(['keys', 'untrust', 'ci', '--dir', deviceDir])).code).toBe(0);
    const after = await edgerun(['keys', 'list', '--dir', deviceDir, '--json']);
    expect((lastJson(after.stdout).keys as { name: string }[]).map((k) => k.name)).toEqual(['op']);
  });
});
