import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { crc32, encodeData, parseSegment } from '../../runtime/telemetry/journal.js';
import { DroppedError, Outbox, OutboxFullError, type OutboxOptions } from '../../runtime/telemetry/outbox.js';
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { Storage } from '../../runtime/ports.js';

const dirs: string[] = [];
const storages: FsStorage[] = [];
afterEach(async () => {
  for (const s of storages.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgerun-outbox-'));
  dirs.push(d);
  return d;
}
async function open(dir: string, opts: OutboxOptions = {}): Promise<Outbox> {
  const s = new FsStorage(dir);
  storages.push(s);
  return Outbox.open(s, opts);
}
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const segFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();

describe('native signer', () => {
  it('signs exactly like tweetnacl', async () => {
    const nacl = (await import('tweetnacl')).default;
    const { nativeSigner } = await import('../../drivers/crypto/ed25519.js');
    const { encodeMessage, decodeMessage } = await import('../../runtime/telemetry/envelope.js');
    const k = nacl.sign.keyPair();
    const msg = { device: 'd', seq: 7, ts: 1, kind: 'results', body: { a: 1 } };
    for (const encoding of ['json', 'cbor'] as const) {
      const slow = encodeMessage(msg, { encoding, signer: k });
      const fast = encodeMessage(msg, { encoding, signer: nativeSigner(k) });
      expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
      expect(decodeMessage(fast).signedBy).toEqual(k.publicKey);
    }
  });
});

describe('journal framing', () => {
  it('crc32 matches zlib', () => {
    const data = bytes('edgerun outbox journal — ümlaut');
    if (typeof zlibCrc32 === 'function') expect(crc32(data)).toBe(zlibCrc32(data));
    expect(crc32(bytes('123456789'))).toBe(0xcbf43926);
  });
});

describe('Outbox', () => {
  it('keeps unacknowledged messages across a reopen, in seq order, and forgets acknowledged ones', async () => {
    const dir = tempDir();
    const a = await open(dir);
    const entries = [0, 1, 2, 3, 4].map((seq) => a.append(seq, 'results', bytes(`r${seq}`)));
    await Promise.all(entries.map((e) => e.stored));
    a.ack(1);
    a.ack(3);
    await expect(entries[1]!.delivered).resolves.toBeUndefined();
    await a.close();

    const b = await open(dir);
    expect(b.pending().map((e) => [e.seq, text(e.payload), e.recovered])).toEqual([[0, 'r0', true], [2, 'r2', true], [4, 'r4', true]]);
    expect(b.counters.recovered).toBe(3);
    expect(b.highestSeq).toBe(4);
    b.ack(0); b.ack(2); b.ack(4);
    await b.close();

    const c = await open(dir);
    expect(c.pending()).toEqual([]);
    // Nothing unacknowledged: the old segments are gone, only the fresh active one may exist.
    expect(segFiles(dir).length).toBeLessThanOrEqual(1);
    await c.close();
  });

  it('rotates segments and deletes them once fully acknowledged', async () => {
    const dir = tempDir();
    const o = await open(dir, { segmentBytes: 1000, fsync: 'never' });
    const payload = new Uint8Array(200).fill(7);
    for (let i = 0; i < 50; i++) o.append(i, 'results', payload);
    await o.flush();
    expect(segFiles(dir).length).toBeGreaterThan(5);
    for (let i = 0; i < 45; i++) o.ack(i);
    await o.flush();
    const left = segFiles(dir).length;
    expect(left).toBeLessThanOrEqual(3);
    await o.close();
    const again = await open(dir);
    expect(again.pending().map((e) => e.seq)).toEqual([45, 46, 47, 48, 49]);
    await again.close();
  });

  it('fsync "always" resolves stored only after a sync, and "interval" group-commits', async () => {
    for (const fsync of ['always', 'interval'] as const) {
      const o = await open(tempDir(), { fsync, fsyncIntervalMs: 5 });
      const es = Array.from({ length: 20 }, (_, i) => o.append(i, 'results', bytes('x')));
      await Promise.all(es.map((e) => e.stored));
      expect(o.counters.syncs).toBeGreaterThan(0);
      expect(o.counters.syncs).toBeLessThan(20);
      await o.close();
    }
  });

  it('"interval": a message is written while a group commit is still flushing, and stored by the next commit', async () => {
    const dir = tempDir();
    // A real directory whose fsync waits until the test lets it go: a disk queue behind other devices.
    const disk = new FsStorage(dir);
    storages.push(disk);
    const syncs: (() => void)[] = [];
    let gated = true;
    const slow: Storage = {
      list: () => disk.list(), read: (n) => disk.read(n), writeAtomic: (n, d) => disk.writeAtomic(n, d), append: (n, d) => disk.append(n, d), remove: (n) => disk.remove(n),
      sync: async (name) => { if (gated) await new Promise<void>((r) => syncs.push(r)); await disk.sync(name); },
    };
    const o = await Outbox.open(slow, { fsync: 'interval', fsyncIntervalMs: 5 });
    const a = o.append(0, 'results', bytes('a'));
    await a.written;
    while (syncs.length === 0) await new Promise((r) => setTimeout(r, 5)); // a's commit is flushing
    let aStored = false;
    void a.stored.then(() => { aStored = true; });
    const b = o.append(1, 'results', bytes('b'));
    await b.written; // not held behind the commit in flight
    expect(aStored).toBe(false);
    expect(parseSegment(readFileSync(join(dir, segFiles(dir)[0]!))).records.map((r) => (r.type === 1 ? r.seq : -1))).toContain(1);
    let bStored = false;
    void b.stored.then(() => { bStored = true; });
    syncs.shift()!();
    await a.stored;
    expect(bStored).toBe(false); // b was written after that commit began: the next one makes it durable
    while (syncs.length === 0) await new Promise((r) => setTimeout(r, 5));
    syncs.shift()!();
    await b.stored;
    gated = false;
    await o.close();
    expect(o.counters.syncs).toBeGreaterThanOrEqual(2);
  });

  it('its commit/ACK timer runs only while something waits: the ACK is written without further traffic, then nothing wakes', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const dir = tempDir();
    const o = await open(dir, { fsync: 'interval', fsyncIntervalMs: 20 });
    await sleep(60);
    expect(o.counters.writes).toBe(0); // an idle outbox writes nothing
    const e = o.append(0, 'results', bytes('r'));
    await e.stored; // the group commit came from the timer: nothing else asked for it
    expect(o.counters.syncs).toBe(1);
    o.ack(0); // one ACK, below the batch size: only the timer writes it
    const writes = o.counters.writes;
    while (o.counters.writes === writes) await sleep(5);
    expect(parseSegment(readFileSync(join(dir, segFiles(dir)[0]!))).records.some((r) => r.type !== 1)).toBe(true);
    await sleep(60);
    expect(o.counters).toMatchObject({ writes: writes + 1, syncs: 2 }); // the ACK record, committed too
    const armed = timers();
    await o.close(); // clears its timer, if one were armed
    expect(timers()).toBe(armed); // nothing left to commit or write: none was
  });

  it('recovers the valid records from a truncated tail and from garbage, counting the damage', async () => {
    const dir = tempDir();
    const a = await open(dir, { fsync: 'never' });
    for (let i = 0; i < 10; i++) a.append(i, 'results', bytes(`result-${i}`.padEnd(40, '.')));
    await a.close();
    const [seg] = segFiles(dir);
    const path = join(dir, seg!);
    const size = statSync(path).size;
    // A torn last record (crash mid-write) …
    truncateSync(path, size - 7);
    // … and garbage in the middle of record 4 (a bad sector), keeping the length intact.
    const buf = readFileSync(path);
    const rec = encodeData(0, 0, 'results', bytes('result-0'.padEnd(40, '.'))).length;
    buf.fill(0x5a, rec * 4 + 12, rec * 4 + 30);
    writeFileSync(path, buf);
    // … and trailing garbage after all that.
    appendFileSync(path, Buffer.from('not a record at all \u00e5\u004a\u00ff\u00ff'));

    const b = await open(dir);
    expect(b.pending().map((e) => e.seq)).toEqual([0, 1, 2, 3, 5, 6, 7, 8]);
    expect(text(b.pending()[4]!.payload)).toBe('result-5'.padEnd(40, '.'));
    expect(b.counters.corruptRegions).toBe(2);
    expect(b.counters.corruptBytes).toBeGreaterThan(0);
    // Still fully usable: new appends and acks survive the next reopen.
    b.append(10, 'results', bytes('after'));
    b.ack(0);
    await b.close();
    const c = await open(dir);
    expect(c.pending().map((e) => e.seq)).toEqual([1, 2, 3, 5, 6, 7, 8, 10]);
    await c.close();
  });

  it('survives a segment that is pure garbage or empty', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'outbox-000000000001.seg'), Buffer.alloc(4096, 0xe5));
    writeFileSync(join(dir, 'outbox-000000000002.seg'), Buffer.alloc(0));
    const o = await open(dir);
    expect(o.pending()).toEqual([]);
    expect(o.counters.corruptRegions).toBe(1);
    expect(o.counters.corruptBytes).toBe(4096);
    o.append(1, 'results', bytes('ok'));
    await o.close();
    const again = await open(dir);
    expect(again.pending().map((e) => e.seq)).toEqual([1]);
    await again.close();
  });

  it('parseSegment keeps records on both sides of a flipped bit', () => {
    const recs = [0, 1, 2].map((i) => encodeData(i, 1, 'results', bytes(`p${i}`)));
    const all = Buffer.concat(recs);
    const at = recs[0]!.length + 15;
    all[at] = all[at]! ^ 0x01;
    const p = parseSegment(all);
    expect(p.records.map((r) => (r as { seq: number }).seq)).toEqual([0, 2]);
    expect(p.corruptRegions).toBe(1);
  });

  it('on overflow drops the oldest telemetry, never results, and refuses when only results are left', async () => {
    const dropped: number[] = [];
    const o = await open(tempDir(), { maxBytes: 1000, onOverflow: (es) => dropped.push(...es.map((e) => e.seq)) });
    const p = new Uint8Array(100);
    const t0 = o.append(0, 'telemetry', p);
    o.append(1, 'results', p);
    o.append(2, 'telemetry', p);
    for (let i = 3; i < 7; i++) o.append(i, 'results', p);
    // 7 × 132 B = 924 B: the next one needs room.
    o.append(7, 'results', p);
    expect(dropped).toEqual([0]);
    await expect(t0.delivered).rejects.toBeInstanceOf(DroppedError);
    o.append(8, 'telemetry', p);
    expect(dropped).toEqual([0, 2]);
    // Newer telemetry pushes out older telemetry; a result pushes out telemetry.
    o.append(9, 'telemetry', p);
    o.append(10, 'results', p);
    expect(dropped).toEqual([0, 2, 8, 9]);
    // Only results left: nothing may go, so the new message is refused (and counted).
    expect(() => o.append(11, 'results', p)).toThrow(OutboxFullError);
    expect(() => o.append(12, 'telemetry', p)).toThrow(OutboxFullError);
    expect(o.counters).toMatchObject({ overflowed: 6, refused: 2 });
    expect(o.pending().map((e) => e.seq)).toEqual([1, 3, 4, 5, 6, 7, 10]);
    await o.close();
  });

  it("'drop-oldest-results' lets results go when configured, and drops persist", async () => {
    const dir = tempDir();
    const o = await open(dir, { maxBytes: 500, overflow: 'drop-oldest-results' });
    const p = new Uint8Array(100);
    for (let i = 0; i < 6; i++) o.append(i, 'results', p);
    expect(o.counters.overflowed).toBe(3);
    await o.close();
    const again = await open(dir);
    expect(again.pending().map((e) => e.seq)).toEqual([3, 4, 5]);
    await again.close();
  });
});
