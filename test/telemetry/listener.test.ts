/**
 * The consumer side: the Listener's dedupe, gaps and signature checks; `edgerun listen` as a real
 * subprocess against a real Mosquitto (printing, --count, persistent sessions, MQTT 5 shared
 * subscriptions splitting a stream between two listeners) and against the embedded Aedes (3.1.1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { encodeMessage, type Message } from '../../runtime/telemetry/envelope.js';
import { TrustStore, fingerprint } from '../../runtime/telemetry/keys.js';
import { Listener, type ListenedMessage } from '../../runtime/telemetry/listener.js';
import { deviceTopic, type OutgoingKind } from '../../runtime/telemetry/topics.js';
import { repoRoot } from '../helpers/cli.js';
import { Mosquitto, describeMosquitto, startAedes, type AedesHandle } from '../helpers/mosquitto.js';

// Real CLI subprocesses (tsx start-up each) on 2 shared cores: a generous bound, not a speed claim.
vi.setConfig({ testTimeout: 180_000 });

const root = mkdtempSync(join(tmpdir(), 'edgerun-listen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PREFIX = 'edgerun';
const device = nacl.sign.keyPair();
const stranger = nacl.sign.keyPair();
const msg = (seq: number, o: Partial<Message> = {}): Message => ({ device: 'cam-1', seq, ts: 1_800_000_000_000 + seq, kind: 'results', body: { seq }, ...o });
const topicOf = (dev = 'cam-1', kind: OutgoingKind = 'results', fleet = 'lab'): string => deviceTopic({ prefix: PREFIX, fleet, device: dev }, kind);

describe('Listener', () => {
  it('dedupes on (device, seq) with duplicates and out-of-order seqs, and counts gaps per device', () => {
    const l = new Listener({ prefix: PREFIX });
    const seqs = [5, 6, 6, 8, 7, 5, 10, 9, 9, 12];
    const statuses = seqs.map((s) => l.accept(topicOf(), encodeMessage(msg(s))).status);
    expect(statuses).toEqual(['new', 'new', 'duplicate', 'new', 'new', 'duplicate', 'new', 'new', 'duplicate', 'new']);
    // Another device's seqs are its own.
    expect(l.accept(topicOf('cam-2'), encodeMessage(msg(5, { device: 'cam-2' }))).status).toBe('new');
    const s = l.summary();
    expect(s.devices['cam-1']).toEqual({ received: 10, unique: 7, duplicates: 3, gaps: 1, sessions: 1, session: '', lowestSeq: 5, highestSeq: 12 });
    expect(s.devices['cam-2']).toMatchObject({ received: 1, unique: 1, duplicates: 0, gaps: 0 });
    expect(s).toMatchObject({ received: 11, unique: 8, duplicates: 3, gaps: 1 });
    // The late seq 11 closes the gap; an earlier one (a resend from before the first seen) is new too.
    expect(l.accept(topicOf(), encodeMessage(msg(11))).status).toBe('new');
    expect(l.accept(topicOf(), encodeMessage(msg(3))).status).toBe('new');
    expect(l.summary().devices['cam-1']).toMatchObject({ unique: 9, gaps: 1, lowestSeq: 3 }); // 4 is missing
  });

  it('the seq a birth sets aside for its will is no gap, unless another seq is missing; a will that arrives is counted once', () => {
    const l = new Listener({ prefix: PREFIX });
    const birth = (seq: number): Message => msg(seq, { kind: 'status', body: { state: 'online', willSeq: seq + 1 } });
    l.accept(topicOf('cam-1', 'status'), encodeMessage(birth(1)));
    for (const s of [3, 4, 5]) l.accept(topicOf(), encodeMessage(msg(s)));
    expect(l.summary().devices['cam-1']).toMatchObject({ unique: 4, gaps: 0 });
    l.accept(topicOf(), encodeMessage(msg(7))); // 6 is missing for real
    expect(l.summary().devices['cam-1']).toMatchObject({ unique: 5, gaps: 1 });
    // The device died: its will (seq 2) arrives after all; it is a message, not a duplicate.
    expect(l.accept(topicOf('cam-1', 'status'), encodeMessage(msg(2, { kind: 'status', body: { state: 'offline' } }))).status).toBe('new');
    expect(l.summary().devices['cam-1']).toMatchObject({ unique: 6, gaps: 1 });
    // A retained birth (replayed by the broker on subscribing) reserves nothing.
    const r = new Listener({ prefix: PREFIX });
    r.accept(topicOf('cam-1', 'status'), encodeMessage(birth(1)), { retained: true });
    for (const s of [1, 3]) r.accept(topicOf(), encodeMessage(msg(s)));
    expect(r.summary().devices['cam-1']).toMatchObject({ gaps: 1 });
  });

  it('remembers a bounded number of seqs per device', () => {
    const l = new Listener({ prefix: PREFIX, window: 64 });
    for (let s = 0; s < 10_000; s += 2) l.accept(topicOf(), encodeMessage(msg(s))); // every other seq: nothing contiguous
    expect(l.remembered('cam-1')).toBeLessThanOrEqual(64);
    expect(l.accept(topicOf(), encodeMessage(msg(9_998))).status).toBe('duplicate');
    expect(l.accept(topicOf(), encodeMessage(msg(9_999))).status).toBe('new');
    expect(l.accept(topicOf(), encodeMessage(msg(100))).status).toBe('duplicate'); // far below the window
    expect(l.summary().devices['cam-1']).toMatchObject({ unique: 5_001, gaps: 4_999 });
    // Contiguous streams compact to nothing.
    const c = new Listener({ prefix: PREFIX, window: 64 });
    for (let s = 0; s < 1000; s++) c.accept(topicOf(), encodeMessage(msg(s)));
    expect(c.remembered('cam-1')).toBe(0);
    expect(c.summary().devices['cam-1']).toMatchObject({ unique: 1000, gaps: 0 });
  });

  it('checks signatures: forged always refused; unsigned and untrusted refused only with requireSigned', async () => {
    const trust = await TrustStore.open(new FsStorage(join(root, 'trust'), 0o600));
    await trust.add('cam-1', device.publicKey);
    const signed = encodeMessage(msg(1), { signer: device });
    const env = JSON.parse(new TextDecoder().decode(signed)) as { msg: string; key: string; sig: string };
    const forged = new TextEncoder().encode(JSON.stringify({ ...env, msg: env.msg.replace('"seq":1', '"seq":2') }));

    const open = new Listener({ prefix: PREFIX, trust });
    const ok = open.accept(topicOf(), signed);
    expect(ok).toMatchObject({ status: 'new', message: { seq: 1, signedBy: { name: 'cam-1', fingerprint: fingerprint(device.publicKey) } } });
    expect(open.accept(topicOf(), forged)).toMatchObject({ status: 'rejected', reason: 'forged-signature' });
    expect(open.accept(topicOf(), encodeMessage(msg(3), { signer: stranger }))).toMatchObject({ status: 'new', message: { signedBy: { fingerprint: fingerprint(stranger.publicKey) } } });
    expect(open.accept(topicOf(), encodeMessage(msg(4)))).toMatchObject({ status: 'new' });
    expect((open.accept(topicOf(), encodeMessage(msg(5))) as { message: ListenedMessage }).message.signedBy).toBeUndefined();

    const strict = new Listener({ prefix: PREFIX, trust, requireSigned: true });
    expect(strict.accept(topicOf(), encodeMessage(msg(1)))).toMatchObject({ status: 'rejected', reason: 'unsigned' });
    expect(strict.accept(topicOf(), encodeMessage(msg(2), { signer: stranger }))).toMatchObject({ status: 'rejected', reason: 'unknown-key' });
    expect(strict.accept(topicOf(), forged)).toMatchObject({ status: 'rejected', reason: 'forged-signature' });
    expect(strict.accept(topicOf(), encodeMessage(msg(3), { signer: device, encoding: 'cbor' }))).toMatchObject({ status: 'new' });
    expect(strict.summary()).toMatchObject({ unique: 1, rejected: { unsigned: 1, 'unknown-key': 1, 'forged-signature': 1 } });
  });

  it('dedupes within a session: a device whose state was wiped (seq back at 0, new session) is not dropped; messages without a session still dedupe', () => {
    const l = new Listener({ prefix: PREFIX });
    for (let s = 0; s < 50; s++) expect(l.accept(topicOf(), encodeMessage(msg(s, { session: 'boot-a' }))).status).toBe('new');
    expect(l.accept(topicOf(), encodeMessage(msg(7, { session: 'boot-a' }))).status).toBe('duplicate');
    // The state dir was wiped: the next run starts at seq 0 again, in a session of its own.
    for (let s = 0; s < 20; s++) expect(l.accept(topicOf(), encodeMessage(msg(s, { session: 'boot-b' }))).status).toBe('new');
    expect(l.accept(topicOf(), encodeMessage(msg(3, { session: 'boot-b' }))).status).toBe('duplicate');
    // A late resend of the first run is still recognised.
    expect(l.accept(topicOf(), encodeMessage(msg(49, { session: 'boot-a' }))).status).toBe('duplicate');
    expect(l.summary().devices['cam-1']).toEqual({ received: 73, unique: 70, duplicates: 3, gaps: 0, sessions: 2, session: 'boot-a', lowestSeq: 0, highestSeq: 49 });
    // Old devices send no session: dedupe on (device, seq) as before.
    const old = new Listener({ prefix: PREFIX });
    expect(old.accept(topicOf(), encodeMessage(msg(1))).status).toBe('new');
    expect(old.accept(topicOf(), encodeMessage(msg(1))).status).toBe('duplicate');
  });

  it('a forged unsigned message with a huge seq cannot blind the listener to a signed device; --require-signed ignores it entirely', async () => {
    const trust = await TrustStore.open(new FsStorage(join(root, 'trust-forgery'), 0o600));
    await trust.add('cam-1', device.publicKey);
    const genuine = (seq: number): Uint8Array => encodeMessage(msg(seq, { session: 's1' }), { signer: device });
    const forgeries = [msg(9_000_000, { session: 's1' }), msg(9_000_000), msg(Number.MAX_SAFE_INTEGER, { session: 's1' })].map((m) => encodeMessage(m));
    for (const requireSigned of [false, true]) {
      const l = new Listener({ prefix: PREFIX, trust, requireSigned });
      expect(l.accept(topicOf(), genuine(1)).status).toBe('new');
      for (const f of forgeries) l.accept(topicOf(), f);
      // An attacker with a key of its own has a stream of its own too.
      l.accept(topicOf(), encodeMessage(msg(9_000_000, { session: 's1' }), { signer: stranger }));
      for (let s = 2; s <= 10; s++) expect(l.accept(topicOf(), genuine(s)).status, `requireSigned ${requireSigned}, seq ${s}`).toBe('new');
      expect(l.accept(topicOf(), genuine(5)).status).toBe('duplicate');
      const s = l.summary();
      if (requireSigned) {
        expect(s.rejected).toMatchObject({ unsigned: 3, 'unknown-key': 1 });
        expect(s.devices['cam-1']).toMatchObject({ received: 11, unique: 10, duplicates: 1, sessions: 1, session: 's1', lowestSeq: 1, highestSeq: 10 });
      } else {
        expect(s.devices['cam-1']).toMatchObject({ unique: 14, duplicates: 1, sessions: 4 });
      }
    }
  });

  it('keeps a bounded number of sessions per device; one that comes back after eviction counts as new, never as lost', () => {
    const l = new Listener({ prefix: PREFIX, maxSessions: 3 });
    for (let b = 0; b < 10; b++) for (let s = 0; s < 5; s++) l.accept(topicOf(), encodeMessage(msg(s, { session: `boot-${b}` })));
    expect(l.summary().devices['cam-1']).toMatchObject({ received: 50, unique: 50, sessions: 10, session: 'boot-9' });
    expect(l.accept(topicOf(), encodeMessage(msg(4, { session: 'boot-9' }))).status).toBe('duplicate');
    expect(l.accept(topicOf(), encodeMessage(msg(4, { session: 'boot-0' }))).status).toBe('new');
    // Scattered seqs in many streams share one window of memory per device.
    const m = new Listener({ prefix: PREFIX, window: 64 });
    for (let b = 0; b < 8; b++) for (let s = 0; s < 200; s += 2) m.accept(topicOf(), encodeMessage(msg(s, { session: `boot-${b}` })));
    expect(m.remembered('cam-1')).toBeLessThanOrEqual(64);
    expect(m.summary().devices['cam-1']).toMatchObject({ unique: 800, sessions: 8 });
  });

  it('tracks at most maxDevices devices: messages of further ones are refused and counted, the known ones go on', () => {
    const l = new Listener({ prefix: PREFIX, maxDevices: 3 });
    const of = (device: string, seq: number) => l.accept(topicOf(device), encodeMessage(msg(seq, { device })));
    for (const d of ['a', 'b', 'c']) expect(of(d, 1).status).toBe('new');
    expect(of('d', 1)).toMatchObject({ status: 'rejected', reason: 'too-many-devices' });
    expect(of('a', 2).status).toBe('new');
    expect(l.summary()).toMatchObject({ unique: 4, rejected: { 'too-many-devices': 1 } });
    expect(Object.keys(l.summary().devices)).toEqual(['a', 'b', 'c']);
    expect(() => new Listener({ prefix: PREFIX, maxDevices: 0 })).toThrow(/maxDevices/);
  });

  it('recognises JSON with leading whitespace or a BOM, by MQTT 5 content type, and CBOR otherwise', () => {
    const l = new Listener({ prefix: PREFIX });
    const text = JSON.stringify(msg(1, { session: 'x' }));
    const utf8 = (t: string): Uint8Array => new TextEncoder().encode(t);
    expect(l.accept(topicOf(), utf8(` \r\n\t${text}`))).toMatchObject({ status: 'new', message: { seq: 1 } });
    expect(l.accept(topicOf(), Uint8Array.from([0xef, 0xbb, 0xbf, ...utf8(JSON.stringify(msg(2)))]))).toMatchObject({ status: 'new', message: { seq: 2 } });
    expect(l.accept(topicOf(), encodeMessage(msg(3), { encoding: 'cbor' }))).toMatchObject({ status: 'new', message: { seq: 3 } });
    expect(l.accept(topicOf(), encodeMessage(msg(4), { encoding: 'cbor' }), { contentType: 'application/cbor' })).toMatchObject({ status: 'new' });
    expect(l.accept(topicOf(), utf8(JSON.stringify(msg(5))), { contentType: 'application/json; charset=utf-8' })).toMatchObject({ status: 'new' });
    // The content type decides when it names an encoding: JSON bytes labelled CBOR are malformed.
    expect(l.accept(topicOf(), utf8(JSON.stringify(msg(6))), { contentType: 'application/cbor' })).toMatchObject({ status: 'rejected', reason: 'malformed', detail: expect.stringContaining('CBOR') });
    expect(l.accept(topicOf(), utf8(JSON.stringify(msg(7, { session: 'a b' }))))).toMatchObject({ status: 'rejected', reason: 'malformed', detail: expect.stringContaining('session') });
  });

  it('refuses malformed messages and messages whose device or kind disagrees with the topic; keeps retained ones out of the counts', () => {
    const l = new Listener({ prefix: PREFIX });
    expect(l.accept(topicOf(), new TextEncoder().encode('{oops'))).toMatchObject({ status: 'rejected', reason: 'malformed' });
    expect(l.accept(topicOf('cam-2'), encodeMessage(msg(1)))).toMatchObject({ status: 'rejected', reason: 'malformed' });
    expect(l.accept(topicOf('cam-1', 'telemetry'), encodeMessage(msg(1)))).toMatchObject({ status: 'rejected', reason: 'malformed' });
    expect(l.accept('other/topic', encodeMessage(msg(1)))).toMatchObject({ status: 'rejected', reason: 'not-edgerun' });
    const retained = l.accept(topicOf('cam-1', 'status'), encodeMessage(msg(1, { kind: 'status', body: { state: 'online' } })), { retained: true });
    expect(retained).toMatchObject({ status: 'retained', message: { retained: true, seq: 1 } });
    expect(l.summary()).toMatchObject({ received: 0, rejected: { malformed: 3, 'not-edgerun': 1 } });
  });
});

// ---- `edgerun listen` as a subprocess ---------------------------------------------------------

interface Running {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number>;
}

/** Starts `edgerun listen ...` and resolves once it has subscribed. */
async function listen(args: string[]): Promise<Running> {
  const proc = spawn(process.execPath, ['bin/edgerun.js', 'listen', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<number>((resolve) => proc.once('exit', (code) => resolve(code ?? 1)));
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('listening on')) resolve();
    });
    void exited.then((code) => reject(new Error(`edgerun listen exited (${code}) before subscribing:\n${err}`)));
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

const lines = (text: string): Record<string, unknown>[] => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const records = (text: string): ListenedMessage[] => lines(text).filter((l) => !('summary' in l)) as unknown as ListenedMessage[];
const summaryOf = (text: string): { unique: number; duplicates: number; gaps: number; devices: Record<string, { duplicates: number; gaps: number; unique: number }> } =>
  (lines(text).find((l) => 'summary' in l && l.final) as { summary: never }).summary;

async function publishAll(url: string, items: { topic: string; payload: Uint8Array }[], protocolVersion: 4 | 5 = 5): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion, clientId: `pub-${Math.random().toString(16).slice(2)}` });
  for (const i of items) await c.publishAsync(i.topic, Buffer.from(i.payload), { qos: 1 });
  await c.endAsync();
}

describeMosquitto('edgerun listen on Mosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); });
  afterAll(async () => { await broker?.dispose(); });

  it('prints every unique message as a JSON line, drops duplicates, verifies signatures, exits after --count with a summary', async () => {
    const keyDir = join(root, 'listen-keys');
    await (await TrustStore.open(new FsStorage(keyDir, 0o600))).add('cam-1', device.publicKey);
    const out = join(root, 'out.jsonl');
    const l = await listen(['--url', broker.url, '--fleet', 'lab', '--kinds', 'results,events', '--count', '5', '--timeout', '30', '--json', '--out', out, '--key-dir', keyDir]);
    const seqs = [1, 2, 2, 3, 1, 5];
    await publishAll(broker.url, [
      ...seqs.map((s) => ({ topic: topicOf(), payload: encodeMessage(msg(s), { signer: device }) })),
      { topic: topicOf('cam-1', 'telemetry'), payload: encodeMessage(msg(6, { kind: 'telemetry' })) }, // not a listened kind
      { topic: topicOf('cam-1', 'events'), payload: encodeMessage(msg(7, { kind: 'events', body: { type: 'x' } }), { encoding: 'cbor' }) },
    ]);
    expect(await l.exited).toBe(0);
    const got = records(readFileSync(out, 'utf8'));
    expect(got.map((m) => [m.kind, m.seq])).toEqual([['results', 1], ['results', 2], ['results', 3], ['results', 5], ['events', 7]]);
    expect(got[0]).toEqual({ topic: topicOf(), device: 'cam-1', seq: 1, ts: msg(1).ts, kind: 'results', body: { seq: 1 }, signedBy: { fingerprint: fingerprint(device.publicKey), name: 'cam-1' } });
    const s = summaryOf(l.stdout());
    // 4 missing; the unsigned events message (seq 7) is a stream of its own, apart from the signed ones.
    expect(s.devices['cam-1']).toMatchObject({ unique: 5, duplicates: 2, gaps: 1, sessions: 2 });
    expect(got[4]).toMatchObject({ kind: 'events', body: { type: 'x' } });
    expect(got[4]!.signedBy).toBeUndefined();
  });

  it('--require-signed ignores unsigned and untrusted messages — a flood of forgeries with huge seqs included — counting them, showing only the first few', async () => {
    const keyDir = join(root, 'strict-keys');
    await (await TrustStore.open(new FsStorage(keyDir, 0o600))).add('cam-9', device.publicKey);
    const l = await listen(['--url', broker.url, '--fleet', 'strict', '--count', '1', '--timeout', '30', '--json', '--require-signed', '--key-dir', keyDir]);
    const forgeries = Array.from({ length: 20 }, (_, i) => ({ topic: topicOf('cam-9', 'results', 'strict'), payload: encodeMessage(msg(9_000_000 + i, { device: 'cam-9' })) }));
    await publishAll(broker.url, [
      ...forgeries,
      { topic: topicOf('cam-9', 'results', 'strict'), payload: encodeMessage(msg(2, { device: 'cam-9' }), { signer: stranger }) },
      { topic: topicOf('cam-9', 'results', 'strict'), payload: encodeMessage(msg(3, { device: 'cam-9' }), { signer: device }) },
    ]);
    expect(await l.exited).toBe(0);
    expect(records(l.stdout()).map((m) => m.seq)).toEqual([3]);
    expect(l.stderr().match(/rejected \(unsigned\)/g)).toHaveLength(5);
    expect(l.stderr()).toContain("further 'unsigned' rejections are counted in the summary, not shown");
    expect(l.stderr()).toMatch(/rejected \(unknown-key\)/);
    expect(summaryOf(l.stdout())).toMatchObject({ unique: 1, rejected: { unsigned: 20, 'unknown-key': 1 } });
  });

  it('a persistent session (--client-id) gets what was published while the listener was away', async () => {
    const id = `listener-${Date.now()}`;
    const first = await listen(['--url', broker.url, '--fleet', 'away', '--client-id', id, '--count', '1', '--timeout', '30', '--json']);
    await publishAll(broker.url, [{ topic: topicOf('cam-1', 'results', 'away'), payload: encodeMessage(msg(1)) }]);
    expect(await first.exited).toBe(0);
    // Published while no listener runs: the broker queues them for the session.
    await publishAll(broker.url, [2, 3, 4].map((s) => ({ topic: topicOf('cam-1', 'results', 'away'), payload: encodeMessage(msg(s)) })));
    const second = await listen(['--url', broker.url, '--fleet', 'away', '--client-id', id, '--count', '3', '--timeout', '30', '--json']);
    expect(await second.exited).toBe(0);
    expect(records(second.stdout()).map((m) => m.seq)).toEqual([2, 3, 4]);
  });

  it('two listeners of one --share group split the messages between them: each message exactly once', async () => {
    const a = await listen(['--url', broker.url, '--fleet', 'shared', '--kinds', 'results', '--share', 'workers', '--json']);
    const b = await listen(['--url', broker.url, '--fleet', 'shared', '--kinds', 'results', '--share', 'workers', '--json']);
    const N = 40;
    await publishAll(broker.url, Array.from({ length: N }, (_, i) => ({ topic: topicOf(`cam-${i % 4}`, 'results', 'shared'), payload: encodeMessage(msg(i, { device: `cam-${i % 4}` })) })));
    // Until both together printed N lines (bounded), then stop them as a user would (SIGTERM).
    for (let i = 0; i < 300 && records(a.stdout()).length + records(b.stdout()).length < N; i++) await new Promise((r) => setTimeout(r, 100));
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    const gotA = records(a.stdout()).map((m) => m.seq);
    const gotB = records(b.stdout()).map((m) => m.seq);
    expect(gotA.length).toBeGreaterThan(0);
    expect(gotB.length).toBeGreaterThan(0);
    expect([...gotA, ...gotB].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});

describe('edgerun listen on the embedded Aedes (MQTT 3.1.1)', () => {
  let aedes: AedesHandle;
  beforeAll(async () => { aedes = await startAedes(); });
  afterAll(async () => { await aedes?.close(); });

  it('receives and prints what is published', async () => {
    const l = await listen(['--url', aedes.url, '--protocol', '4', '--fleet', '+', '--count', '3', '--timeout', '30', '--json']);
    await publishAll(aedes.url, [1, 2, 3].map((s) => ({ topic: topicOf('cam-7', 'telemetry', 'f1'), payload: encodeMessage(msg(s, { device: 'cam-7', kind: 'telemetry' })) })), 4);
    expect(await l.exited).toBe(0);
    expect(records(l.stdout()).map((m) => [m.device, m.kind, m.seq])).toEqual([['cam-7', 'telemetry', 1], ['cam-7', 'telemetry', 2], ['cam-7', 'telemetry', 3]]);
    expect(summaryOf(l.stdout())).toMatchObject({ unique: 3, duplicates: 0, gaps: 0 });
  });
});
