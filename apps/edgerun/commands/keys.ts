/**
 * `edgerun keys gen|show|trust|untrust|list`: the device's (or an operator's) ed25519 key pair and
 * the trust store of keys allowed to sign commands. Files live in --dir (default: config
 * security.keyDir, else state/keys) with mode 0600.
 */
import { existsSync, statSync } from 'node:fs';
import { readTextLimited } from '../../../drivers/storage/read-file.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { KEY_FILE_MAX_BYTES, KeyStore, TrustStore, checkKeyName, parsePublicKey, publicInfo } from '../../../runtime/telemetry/keys.js';
import { keyDirOf, loadConfig, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';

export interface KeysOptions {
  dir?: string;
  name?: string;
  file?: string;
  force?: boolean;
  json?: boolean;
}

/** The key directory and file names; `create` makes the directory (0700) when it is missing. */
async function location(opts: KeysOptions, global: GlobalOptions, create: boolean): Promise<{ dir: string; keyFile: string; trustFile: string; storage: FsStorage }> {
  const config = await loadConfig(global);
  const dir = opts.dir ?? keyDirOf(config);
  if (opts.name !== undefined) checkKeyName(opts.name);
  const keyFile = opts.file ?? (opts.name !== undefined ? `${opts.name}.key` : config.security.keyFile);
  if (!create && !existsSync(dir)) throw new Error(`no key directory ${dir} (create keys with \`edgerun keys gen\`, or give --dir)`);
  return { dir, keyFile, trustFile: config.security.trustedKeysFile, storage: new FsStorage(dir, 0o600, KEY_FILE_MAX_BYTES) };
}

export async function keysGenCommand(opts: KeysOptions, global: GlobalOptions): Promise<void> {
  const { dir, keyFile, storage } = await location(opts, global, true);
  const key = await new KeyStore(storage).generate(keyFile, { name: opts.name ?? keyFile.replace(/\.key$/, ''), force: opts.force });
  const info = { ...publicInfo(key.publicKey, key.name), file: `${dir}/${keyFile}` };
  if (opts.json) console.log(JSON.stringify(info));
  else console.log(`generated ed25519 key '${info.name}' in ${info.file} (mode 0600)\npublic key:  ${info.publicKey}\nfingerprint: ${info.fingerprint}`);
}

export async function keysShowCommand(opts: KeysOptions, global: GlobalOptions): Promise<void> {
  const { dir, keyFile, storage } = await location(opts, global, false);
  const key = await new KeyStore(storage).load(keyFile);
  const info = { ...publicInfo(key.publicKey, key.name), file: `${dir}/${keyFile}` };
  if (opts.json) console.log(JSON.stringify(info));
  else console.log(`${info.name ? `key '${info.name}' ` : ''}in ${info.file}\npublic key:  ${info.publicKey}\nfingerprint: ${info.fingerprint}`);
}

/** `key` is base64 of a public key, or a file: a key file or `keys show --json` output (only its public key is read). */
export async function keysTrustCommand(key: string, opts: KeysOptions, global: GlobalOptions): Promise<void> {
  const { dir, trustFile, storage } = await location(opts, global, true);
  const isFile = existsSync(key) && !statSync(key).isDirectory();
  const parsed = parsePublicKey(isFile ? await readTextLimited(key, KEY_FILE_MAX_BYTES, 'key file') : key, isFile ? `file ${key}` : 'public key');
  const name = opts.name ?? parsed.name;
  if (name === undefined) throw new Error('give the trusted key a name with --name');
  const trust = await TrustStore.open(storage, trustFile);
  const entry = await trust.add(name, parsed.publicKey, { replace: opts.force });
  if (opts.json) console.log(JSON.stringify(entry));
  else console.log(`trusting key '${entry.name}' (${entry.fingerprint}) in ${dir}/${trustFile}`);
}

export async function keysUntrustCommand(nameOrFingerprint: string, opts: KeysOptions, global: GlobalOptions): Promise<void> {
  const { trustFile, storage } = await location(opts, global, false);
  const trust = await TrustStore.open(storage, trustFile);
  if (!(await trust.remove(nameOrFingerprint))) {
    console.error(`edgerun: no trusted key named or with fingerprint '${nameOrFingerprint}'`);
    process.exitCode = 1;
    return;
  }
  if (!opts.json) console.log(`no longer trusting '${nameOrFingerprint}'`);
  else console.log(JSON.stringify({ removed: nameOrFingerprint }));
}

export async function keysListCommand(opts: KeysOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const dir = opts.dir ?? keyDirOf(config);
  const trustFile = config.security.trustedKeysFile;
  const keys = existsSync(dir) ? (await TrustStore.open(new FsStorage(dir, 0o600, KEY_FILE_MAX_BYTES), trustFile)).list() : [];
  if (opts.json) {
    console.log(JSON.stringify({ file: `${dir}/${trustFile}`, keys }));
    return;
  }
  if (!keys.length) {
    console.log(`no trusted keys in ${dir}/${trustFile} (add one with \`edgerun keys trust <pubkey|file> --name <name>\`)`);
    return;
  }
  console.log(formatTable(['name', 'fingerprint', 'public key', 'added'], keys.map((k) => [k.name, k.fingerprint, k.publicKey, k.added ?? ''])));
}
