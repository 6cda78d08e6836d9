/**
 * `edgerun listen`: subscribe to a fleet's messages and print them as JSON lines
 * {topic, device, session, seq, ts, kind, body, signedBy?} (to --out when given), deduplicated on
 * (device, signer, session, seq), signatures checked; a summary per device (received, unique,
 * duplicates, gaps) on exit and every --summary-every seconds. --share splits the messages among
 * the listeners of a group (MQTT 5 shared subscription); --client-id keeps a persistent session, so
 * a listener that comes back gets what the broker queued meanwhile.
 *
 * Exit 1 when the broker refuses the credentials (at once), when --timeout passes without a
 * connection, or when --count was not reached; a one-line reason on stderr. The URL's password is
 * never printed.
 */
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { existsSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { connectRefusal, type MqttClient } from '../../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import type { Config } from '../../../runtime/config.js';
import { KEY_FILE_MAX_BYTES, TrustStore } from '../../../runtime/telemetry/keys.js';
import { Listener, type ListenRejectReason, type ListenSummary } from '../../../runtime/telemetry/listener.js';
import { OUTGOING_KINDS, fleetFilter, type OutgoingKind } from '../../../runtime/telemetry/topics.js';
import { brokerClient, keyDirOf, loadConfig, type GlobalOptions } from '../context.js';

export interface ListenOptions {
  url?: string;
  fleet: string;
  kinds?: string;
  share?: string;
  out?: string;
  count?: number;
  timeout?: number;
  json?: boolean;
  clientId?: string;
  requireSigned?: boolean;
  keyDir?: string;
  prefix?: string;
  protocol?: number;
  summaryEvery?: number;
  quiet?: boolean;
}

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';

/** Rejections shown per reason; the rest are only counted (a flood of forgeries must not flood stderr). */
const SHOWN_REJECTIONS = 5;

const OPEN_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist', ENOTDIR: 'a parent is not a directory', EISDIR: 'it is a directory', EACCES: 'permission denied', EROFS: 'read-only file system',
};

export interface ToolClientOptions {
  url?: string;
  clientId: string;
  clean: boolean;
  protocol?: number;
  /** The broker refused the connection for good (credentials, authorisation, protocol): the reason. */
  onRefused: (reason: string) => void;
  /** Other connection errors (retried), each new one once; default: printed on stderr. */
  onError?: (message: string) => void;
}

/** An MQTT client for a command-line tool, with the broker settings of the config. */
export function toolClient(config: Config, o: ToolClientOptions): MqttClient {
  let last: string | undefined;
  const onError = o.onError ?? ((message: string) => console.error(`edgerun: mqtt: ${message}`));
  return brokerClient(config, {
    url: o.url ?? config.mqtt.url ?? DEFAULT_URL, clientId: o.clientId, clean: o.clean,
    ...(o.protocol !== undefined ? { protocolVersion: o.protocol as 4 | 5 } : {}),
    reconnect: { initialMs: 250, maxMs: 5_000 },
    onError: (e) => {
      const refused = connectRefusal(e);
      // One line each: TLS errors carry OpenSSL's multi-line detail.
      const message = e.message.replace(/\s+/g, ' ').trim();
      if (refused) o.onRefused(refused);
      else if (message !== last) onError(message);
      last = message;
    },
  });
}

export function parseKinds(list: string | undefined): OutgoingKind[] {
  if (list === undefined || list === '' || list === 'all') return [...OUTGOING_KINDS];
  const kinds = list.split(',').map((k) => k.trim()).filter(Boolean);
  const unknown = kinds.filter((k) => !(OUTGOING_KINDS as readonly string[]).includes(k));
  if (unknown.length) throw new Error(`unknown kind ${unknown.map((k) => `'${k}'`).join(', ')}; kinds: ${OUTGOING_KINDS.join(', ')}`);
  return [...new Set(kinds)] as OutgoingKind[];
}

function summaryText(s: ListenSummary): string {
  const rejected = Object.entries(s.rejected).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ');
  const lines = [`received ${s.received}, unique ${s.unique}, duplicates ${s.duplicates}, gaps ${s.gaps}${rejected ? `, rejected: ${rejected}` : ''}`];
  for (const [d, c] of Object.entries(s.devices)) {
    const latest = c.sessions > 1 ? `${c.sessions} sessions, the latest ` : '';
    lines.push(`  ${d}: received ${c.received}, unique ${c.unique}, duplicates ${c.duplicates}, gaps ${c.gaps} (${latest}seq ${c.lowestSeq}..${c.highestSeq})`);
  }
  return lines.join('\n');
}

export async function listenCommand(opts: ListenOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const kinds = parseKinds(opts.kinds);
  const all = kinds.length === OUTGOING_KINDS.length;
  const filters = (all ? ['+' as const] : kinds).map((k) => fleetFilter(prefix, opts.fleet, k, opts.share));
  const url = opts.url ?? config.mqtt.url ?? DEFAULT_URL;
  const shownUrl = redactUrl(url);

  const keyDir = opts.keyDir ?? keyDirOf(config);
  let trust: TrustStore | undefined;
  if (existsSync(keyDir)) trust = await TrustStore.open(new FsStorage(keyDir, 0o600, KEY_FILE_MAX_BYTES), config.security.trustedKeysFile);
  if (opts.requireSigned && !trust?.list().length) throw new Error(`--require-signed but no trusted keys in ${keyDir}/${config.security.trustedKeysFile} (add device keys with \`edgerun keys trust\`)`);
  const listener = new Listener({ prefix, trust, requireSigned: opts.requireSigned, verify: nativeVerify });

  const log = (line: string): void => { if (!opts.quiet) console.error(line); };
  const persistent = opts.clientId !== undefined;
  let unique = 0;
  let done = false;
  let failure: string | undefined;
  let lastError: string | undefined;
  let finish!: (why: string) => void;
  const finished = new Promise<string>((resolve) => { finish = (why) => { if (!done) { done = true; resolve(why); } }; });
  const fail = (reason: string): void => { failure ??= reason; finish('failed'); };
  const mqtt = toolClient(config, {
    url, clientId: opts.clientId ?? `edgerun-listen-${randomBytes(6).toString('hex')}`, clean: !persistent, protocol: opts.protocol,
    onRefused: (reason) => fail(`the broker at ${shownUrl} refused the connection: ${reason}`),
    onError: (message) => { lastError = message; log(`edgerun listen: mqtt: ${message}`); },
  });

  // Opened before connecting: a path that cannot be written is an error now, not a crash later.
  let out: WriteStream | NodeJS.WriteStream = process.stdout;
  if (opts.out) {
    const file = await open(opts.out, 'a').catch((e: NodeJS.ErrnoException) => { throw new Error(`--out ${opts.out}: cannot append to it (${OPEN_ERRORS[e.code ?? ''] ?? e.message})`); });
    out = file.createWriteStream();
    out.on('error', (e) => fail(`--out ${opts.out}: ${e.message}`));
  }
  const shownRejections: Partial<Record<ListenRejectReason, number>> = {};
  mqtt.onMessage((m) => {
    if (done) return; // what arrives after --count or the timeout is not taken
    const o = listener.accept(m.topic, m.payload, { retained: m.retain, ...(m.contentType ? { contentType: m.contentType } : {}) });
    if (o.status === 'rejected') {
      const n = (shownRejections[o.reason] = (shownRejections[o.reason] ?? 0) + 1);
      if (n <= SHOWN_REJECTIONS) log(`edgerun listen: rejected (${o.reason}) on ${o.topic}: ${o.detail}`);
      if (n === SHOWN_REJECTIONS) log(`edgerun listen: further '${o.reason}' rejections are counted in the summary, not shown`);
      return;
    }
    if (o.status === 'duplicate') return;
    out.write(`${JSON.stringify(o.message)}\n`);
    if (o.status === 'new' && opts.count !== undefined && ++unique >= opts.count) finish('count');
  });
  let ready = false;
  let everConnected = false;
  mqtt.onConnect(() => {
    everConnected = true;
    void Promise.all(filters.map((f) => mqtt.subscribe(f, 1))).then(() => {
      if (!ready) log(`listening on ${shownUrl} to ${filters.join(' ')}${persistent ? ` (persistent session ${opts.clientId})` : ''}`);
      ready = true;
    }, (e: Error) => log(`edgerun listen: subscribe failed: ${e.message}`));
  });
  let stopping = false;
  mqtt.onClose((e) => { if (!stopping) log(`edgerun listen: connection lost (${e?.message ?? 'closed'}); reconnecting`); });

  const printSummary = (final: boolean): void => {
    const s = listener.summary();
    if (opts.json) process.stdout.write(`${JSON.stringify({ summary: s, ...(final ? { final: true } : {}) })}\n`);
    else if (!opts.quiet) console.error(summaryText(s));
  };
  const timers: NodeJS.Timeout[] = [];
  if (opts.timeout !== undefined) timers.push(setTimeout(() => finish('timeout'), opts.timeout * 1000));
  if (opts.summaryEvery !== undefined) timers.push(setInterval(() => printSummary(false), opts.summaryEvery * 1000));
  const onSignal = (): void => finish('signal');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  mqtt.connect();
  const why = await finished;
  stopping = true;
  for (const t of timers) clearTimeout(t);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await mqtt.end();
  if (out !== process.stdout) await new Promise<void>((resolve) => (out as WriteStream).end(resolve));
  if (why === 'timeout' && !everConnected) fail(`no connection to ${shownUrl} within ${opts.timeout} s${lastError ? ` (${lastError})` : ''}`);
  if (failure !== undefined) {
    console.error(`edgerun listen: ${failure}`);
    process.exitCode = 1;
    return;
  }
  printSummary(true);
  if (why === 'timeout' && opts.count !== undefined && unique < opts.count) {
    console.error(`edgerun listen: timed out after ${opts.timeout} s with ${unique} of ${opts.count} messages`);
    process.exitCode = 1;
  }
}
