/**
 * The durable outbox: messages are appended to an on-disk journal (runtime/telemetry/journal.ts,
 * through the Storage port) before they are published, and leave it only when acknowledged.
 *
 *   const outbox = await Outbox.open(storage, { fsync: 'interval' });
 *   outbox.pending()                      // recovered, unacknowledged entries, in seq order
 *   const e = outbox.append(seq, 'results', bytes, createdAt?, onWritten?);  // throws OutboxFullError when full
 *   await e.written;                      // in the file (survives SIGKILL of the process): now publish
 *                                         // (or the onWritten callback: no promise per message)
 *   await e.stored;                       // durable per the fsync policy (survives power loss)
 *   outbox.ack(seq);                      // PUBACK: e.delivered resolves
 *   await outbox.close();
 *
 * Journal: segment files `outbox-<12 digits>.seg`, a new one when the active one passes
 * `segmentBytes`, and on every open (never append after a possibly torn tail). ACK and DROP records
 * are appended to the same stream; a segment is deleted once it and every older one hold no
 * unacknowledged record (oldest first, so an ACK is never lost while its DATA record survives).
 *
 * fsync: 'always' (each write batch is synced before `written` — publish waits for the disk),
 * 'interval' (default: batches are written at once, a group commit every fsyncIntervalMs resolves
 * `stored`), 'never' (the OS decides; `stored` = `written`).
 *
 * Bounded: unacknowledged bytes ≤ maxBytes. On overflow the oldest droppable messages go first
 * (telemetry, then events); results/detections only with overflow 'drop-oldest-results'; when
 * nothing may go, the new message is refused (OutboxFullError). Every drop is counted and
 * passed to onOverflow (the reporter reports it as an `events` message).
 */
import type { Storage } from '../ports.js';
import { encodeData, encodeSeqList, parseSegment, RecordType } from './journal.js';
import { transientBytes } from '../transient-bytes.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';
export type OverflowPolicy = 'drop-oldest-telemetry' | 'drop-oldest-results';

export interface OutboxOptions {
  /** Unacknowledged bytes kept at most (default 64 MiB). */
  maxBytes?: number;
  /** Segment size after which a new segment starts (default 4 MiB). */
  segmentBytes?: number;
  fsync?: FsyncPolicy;
  /** Group-commit period for fsync 'interval' (default 50 ms). */
  fsyncIntervalMs?: number;
  overflow?: OverflowPolicy;
  /** Kinds dropped first on overflow, in this order (default telemetry, events). */
  droppableKinds?: readonly string[];
  /** Kinds dropped only with 'drop-oldest-results' (default results, detections). */
  resultKinds?: readonly string[];
  /** Wall clock for createdAt (ms since the epoch). */
  now?: () => number;
  onOverflow?: (dropped: OutboxEntry[]) => void;
}

export type EntryState = 'pending' | 'acked' | 'dropped';

export class OutboxFullError extends Error {
  override readonly name = 'OutboxFullError';
}

/** Rejection of `delivered` when a message left the outbox without delivery. */
export class DroppedError extends Error {
  override readonly name = 'DroppedError';
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export interface OutboxEntry {
  readonly seq: number;
  readonly kind: string;
  readonly payload: Uint8Array;
  readonly createdAt: number;
  /** Bytes in the journal. */
  readonly bytes: number;
  readonly state: EntryState;
  /** In the journal file (publish may go). */
  readonly written: Promise<void>;
  /** Durable per the fsync policy. */
  readonly stored: Promise<void>;
  /** Acknowledged by the broker; rejects with DroppedError when dropped instead. */
  readonly delivered: Promise<void>;
  /** Came from the journal at open (a replay). */
  readonly recovered: boolean;
  /** In the journal file now. */
  readonly isWritten: boolean;
  /** How often it was handed to the broker (the sender's bookkeeping: a second send is a resend). */
  sends: number;
}

type Settled = { ok: true } | { ok: false; error: Error };
const OK: Settled = { ok: true };

/** A promise made only when somebody asks for it (most callers never await stored/delivered). */
class Lazy {
  #settled: Settled | undefined;
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  get promise(): Promise<void> {
    if (!this.#promise) {
      const s = this.#settled;
      this.#promise = s ? (s.ok ? Promise.resolve() : Promise.reject(s.error)) : new Promise<void>((res, rej) => { this.#resolve = res; this.#reject = rej; });
      // Nobody has to wait for these: no unhandled rejection when a dropped message was not awaited.
      this.#promise.catch(() => undefined);
    }
    return this.#promise;
  }
  get done(): boolean { return this.#settled !== undefined; }
  resolve(): void {
    if (this.#settled) return;
    this.#settled = { ok: true };
    this.#resolve?.();
  }
  reject(error: Error): void {
    if (this.#settled) return;
    this.#settled = { ok: false, error };
    this.#reject?.(error);
  }
}

/** Called once the record is in the journal file (or the write failed). */
export type WrittenCallback = (error?: Error) => void;

const enum Sig { Written, Stored, Delivered }

class Entry implements OutboxEntry {
  state: EntryState = 'pending';
  segment: Segment | undefined;
  sends = 0;
  onWritten: WrittenCallback | undefined;
  /** Outcome per signal (written, stored, delivered); promises only for the signals someone reads. */
  readonly #settled: [Settled | undefined, Settled | undefined, Settled | undefined] = [undefined, undefined, undefined];
  #lazy: [Lazy | undefined, Lazy | undefined, Lazy | undefined] | undefined;
  constructor(readonly seq: number, readonly kind: string, readonly payload: Uint8Array, readonly createdAt: number,
    readonly bytes: number, readonly recovered: boolean) {
    if (recovered) this.#settled[Sig.Written] = this.#settled[Sig.Stored] = OK;
  }
  #promise(i: Sig): Promise<void> {
    const lazy = (this.#lazy ??= [undefined, undefined, undefined]);
    let l = lazy[i];
    if (!l) {
      l = lazy[i] = new Lazy();
      const s = this.#settled[i];
      if (s) s.ok ? l.resolve() : l.reject(s.error);
    }
    return l.promise;
  }
  #settle(i: Sig, s: Settled): void {
    if (this.#settled[i]) return;
    this.#settled[i] = s;
    const l = this.#lazy?.[i];
    if (l) s.ok ? l.resolve() : l.reject(s.error);
  }
  get written(): Promise<void> { return this.#promise(Sig.Written); }
  get stored(): Promise<void> { return this.#promise(Sig.Stored); }
  get delivered(): Promise<void> { return this.#promise(Sig.Delivered); }
  get isWritten(): boolean { return this.#settled[Sig.Written]?.ok === true; }
  markWritten(): void {
    this.#settle(Sig.Written, OK);
    const cb = this.onWritten;
    this.onWritten = undefined;
    cb?.();
  }
  markStored(): void { this.#settle(Sig.Stored, OK); }
  failWrite(error: Error): void {
    const cb = this.onWritten;
    this.onWritten = undefined;
    const s: Settled = { ok: false, error };
    this.#settle(Sig.Written, s);
    this.#settle(Sig.Stored, s);
    this.#settle(Sig.Delivered, s);
    cb?.(error);
  }
  settle(state: 'acked' | 'dropped', reason?: string): void {
    this.state = state;
    this.#settle(Sig.Delivered, state === 'acked' ? OK : { ok: false, error: new DroppedError(reason ?? 'dropped', `message ${this.seq} (${this.kind}) dropped: ${reason}`) });
  }
}

interface Segment { id: number; name: string; size: number; live: number }

export interface OutboxCounters {
  appended: number;
  acked: number;
  /** Dropped to make room, plus refused appends. */
  overflowed: number;
  refused: number;
  /** Dropped for other reasons (expired, refused by the broker). */
  dropped: number;
  recovered: number;
  corruptRegions: number;
  corruptBytes: number;
  pending: number;
  pendingBytes: number;
  segments: number;
  syncs: number;
  /** Appends to the journal (each a batch of records). */
  writes: number;
}

const ACK_BATCH = 4096;
const segName = (id: number): string => `outbox-${String(id).padStart(12, '0')}.seg`;
const SEG_RE = /^outbox-(\d{12})\.seg$/;

export class Outbox {
  readonly #storage: Storage;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #fsync: FsyncPolicy;
  readonly #overflow: OverflowPolicy;
  readonly #droppable: readonly string[];
  readonly #resultKinds: readonly string[];
  readonly #now: () => number;
  readonly #onOverflow: ((dropped: OutboxEntry[]) => void) | undefined;

  /** Unacknowledged entries in seq order, and the same per kind (oldest first). */
  readonly #pending = new Map<number, Entry>();
  readonly #byKind = new Map<string, Map<number, Entry>>();
  #pendingBytes = 0;
  readonly #segments: Segment[] = [];
  #active!: Segment;
  #highestSeq = -1;

  /** Framed records waiting for the writer, and the entries they carry. */
  #batch: Uint8Array[] = [];
  /** The entry of each DATA record in #batch (undefined for ACK/DROP records). */
  #batchOwners: (Entry | undefined)[] = [];
  #acks: number[] = [];
  #drops: number[] = [];
  /** Written, waiting for the next group commit. */
  #unsynced: Entry[] = [];
  #unsyncedSegments = new Set<Segment>();
  #syncDue = false;
  /**
   * ACK records wait for the next data write, the timer or ACK_BATCH of them: a lost ACK costs only
   * a duplicate after a crash, and a write per PUBACK would cost a syscall per message.
   */
  #ackDue = false;
  #pumping: Promise<void> | undefined;
  /**
   * The group commit in flight (fsync 'interval'). It runs beside the writer: a message written
   * meanwhile is published without waiting for the disk to flush (a device's fsync can queue
   * behind hundreds of others on a fleet host); it is made durable by the next commit.
   */
  #committing: Promise<void> | undefined;
  /**
   * The group commit ('interval') and the coalesced ACK records (every policy) wait on one one-shot
   * timer, armed only while there is such work: an outbox with nothing to commit wakes nothing (a
   * fleet thread hosts hundreds; an idle device saves the wake-ups).
   */
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #periodMs: number;
  #closed = false;
  #failure: Error | undefined;
  readonly #counters = { appended: 0, acked: 0, overflowed: 0, refused: 0, dropped: 0, recovered: 0, corruptRegions: 0, corruptBytes: 0, syncs: 0, writes: 0 };

  private constructor(storage: Storage, o: OutboxOptions) {
    this.#storage = storage;
    this.#maxBytes = o.maxBytes ?? 64 * 2 ** 20;
    this.#segmentBytes = o.segmentBytes ?? 4 * 2 ** 20;
    this.#fsync = o.fsync ?? 'interval';
    this.#overflow = o.overflow ?? 'drop-oldest-telemetry';
    this.#droppable = o.droppableKinds ?? ['telemetry', 'events'];
    this.#resultKinds = o.resultKinds ?? ['results', 'detections'];
    this.#now = o.now ?? Date.now;
    this.#onOverflow = o.onOverflow;
    this.#periodMs = o.fsyncIntervalMs ?? 50;
  }

  /** Opens the journal in `storage`, replaying what was not acknowledged. Corruption is counted, not thrown. */
  static async open(storage: Storage, opts: OutboxOptions = {}): Promise<Outbox> {
    const o = new Outbox(storage, opts);
    await o.#recover();
    return o;
  }

  async #recover(): Promise<void> {
    const names = (await this.#storage.list()).filter((n) => SEG_RE.test(n));
    for (const name of names) {
      const id = Number(SEG_RE.exec(name)![1]);
      const data = (await this.#storage.read(name)) ?? new Uint8Array();
      const seg: Segment = { id, name, size: data.length, live: 0 };
      this.#segments.push(seg);
      const parsed = parseSegment(data);
      this.#counters.corruptRegions += parsed.corruptRegions;
      this.#counters.corruptBytes += parsed.corruptBytes;
      for (const r of parsed.records) {
        if (r.type === RecordType.Data) {
          if (r.seq > this.#highestSeq) this.#highestSeq = r.seq;
          if (this.#pending.has(r.seq)) continue;
          const e = new Entry(r.seq, r.kind, r.payload, r.createdAt, encodedSize(r.kind, r.payload), true);
          e.segment = seg;
          this.#insert(e);
          seg.live++;
        } else {
          for (const s of r.seqs) {
            const e = this.#pending.get(s);
            if (!e) continue;
            this.#remove(e);
            e.segment!.live--;
          }
        }
      }
    }
    // Replay in seq order whatever order the segments held them in.
    const sorted = [...this.#pending.values()].sort((a, b) => a.seq - b.seq);
    this.#pending.clear();
    for (const e of sorted) this.#pending.set(e.seq, e);
    for (const m of this.#byKind.values()) {
      const s = [...m.values()].sort((a, b) => a.seq - b.seq);
      m.clear();
      for (const e of s) m.set(e.seq, e);
    }
    this.#counters.recovered = this.#pending.size;
    const nextId = this.#segments.length ? this.#segments[this.#segments.length - 1]!.id + 1 : 1;
    this.#active = { id: nextId, name: segName(nextId), size: 0, live: 0 };
    this.#segments.push(this.#active);
    await this.#deleteDone();
  }

  /** Highest seq ever seen in the journal (−1 when none): a floor for the next sequence number. */
  get highestSeq(): number { return this.#highestSeq; }

  get counters(): OutboxCounters {
    return { ...this.#counters, pending: this.#pending.size, pendingBytes: this.#pendingBytes, segments: this.#segments.length };
  }

  /** Unacknowledged entries, in seq order. */
  pending(): OutboxEntry[] { return [...this.#pending.values()]; }

  get(seq: number): OutboxEntry | undefined { return this.#pending.get(seq); }

  /** Appends a message; the write happens in the next batch. Throws OutboxFullError when there is no room. */
  append(seq: number, kind: string, payload: Uint8Array, createdAt = this.#now(), onWritten?: WrittenCallback): OutboxEntry {
    if (this.#closed) throw new Error('outbox is closed');
    if (this.#failure) throw this.#failure;
    if (this.#pending.has(seq)) throw new Error(`seq ${seq} is already in the outbox`);
    const record = encodeData(seq, createdAt, kind, payload);
    if (!this.#makeRoom(kind, record.length)) {
      this.#counters.refused++;
      this.#counters.overflowed++;
      throw new OutboxFullError(`outbox full (${this.#pendingBytes} of ${this.#maxBytes} bytes unacknowledged); ${kind} ${seq} refused`);
    }
    // The entry's payload is a view into its journal record: one copy of the bytes stays alive, not two.
    const e = new Entry(seq, kind, record.subarray(record.length - payload.length), createdAt, record.length, false);
    e.onWritten = onWritten;
    this.#insert(e);
    if (seq > this.#highestSeq) this.#highestSeq = seq;
    this.#counters.appended++;
    this.#batch.push(record);
    this.#batchOwners.push(e);
    this.#kick();
    return e;
  }

  /** The broker acknowledged `seq`. Unknown or settled seqs are ignored (a late duplicate PUBACK). */
  ack(seq: number): void {
    const e = this.#pending.get(seq);
    if (!e) return;
    this.#settle(e, 'acked');
    this.#counters.acked++;
    this.#acks.push(seq);
    if (this.#acks.length >= ACK_BATCH) {
      this.#ackDue = true;
      this.#kick();
    } else this.#arm();
  }

  /** Removes `seq` without delivery (expired, refused by the broker). */
  drop(seq: number, reason: string): void {
    const e = this.#pending.get(seq);
    if (!e) return;
    this.#settle(e, 'dropped', reason);
    this.#counters.dropped++;
    this.#drops.push(seq);
    this.#ackDue = true;
    this.#kick();
  }

  /** Resolves when everything appended, acknowledged or dropped so far is written and synced. */
  async flush(): Promise<void> {
    this.#syncDue = this.#fsync !== 'never';
    this.#ackDue = true;
    this.#kick();
    while (this.#pumping || this.#committing) await (this.#pumping ?? this.#committing);
    if (this.#failure) throw this.#failure;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #makeRoom(kind: string, bytes: number): boolean {
    if (this.#pendingBytes + bytes <= this.#maxBytes) return true;
    const order = [...this.#droppable, ...(this.#overflow === 'drop-oldest-results' ? this.#resultKinds : [])];
    // A message may only push out kinds at least as expendable as itself (telemetry never evicts a result).
    const own = order.indexOf(kind);
    const candidates = own < 0 ? order : order.slice(0, own + 1);
    let free = this.#maxBytes - this.#pendingBytes;
    const victims: Entry[] = [];
    outer: for (const k of candidates) {
      for (const e of this.#byKind.get(k)?.values() ?? []) {
        victims.push(e);
        free += e.bytes;
        if (free >= bytes) break outer;
      }
    }
    if (free < bytes) return false;
    for (const e of victims) {
      this.#settle(e, 'dropped', 'overflow');
      this.#drops.push(e.seq);
    }
    this.#counters.overflowed += victims.length;
    if (victims.length) this.#onOverflow?.(victims);
    return true;
  }

  #insert(e: Entry): void {
    this.#pending.set(e.seq, e);
    let m = this.#byKind.get(e.kind);
    if (!m) this.#byKind.set(e.kind, (m = new Map()));
    m.set(e.seq, e);
    this.#pendingBytes += e.bytes;
  }

  #remove(e: Entry): void {
    this.#pending.delete(e.seq);
    this.#byKind.get(e.kind)?.delete(e.seq);
    this.#pendingBytes -= e.bytes;
  }

  #settle(e: Entry, state: 'acked' | 'dropped', reason?: string): void {
    this.#remove(e);
    e.settle(state, reason);
    if (e.segment) e.segment.live--;
  }

  #kick(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#pump()).catch((err: Error) => this.#fail(err)).finally(() => {
      this.#pumping = undefined;
      // Work that arrived while the writer was finishing would otherwise wait for the next kick
      // (a commit due while one is in flight starts when that one ends).
      if (!this.#failure && (this.#batch.length || this.#ackDue || (this.#syncDue && !this.#committing))) this.#kick();
      else this.#arm();
    });
  }

  /** Arms the commit/ACK timer when something waits for it and it is not armed yet (unref'd: close() flushes anyway). */
  #arm(): void {
    if (this.#timer || this.#closed) return;
    // Only fsync 'interval' leaves entries and segments unsynced.
    const unsynced = (): boolean => this.#unsynced.length > 0 || this.#unsyncedSegments.size > 0;
    if (!unsynced() && !this.#acks.length && !this.#drops.length) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (unsynced()) this.#syncDue = true;
      if (this.#acks.length || this.#drops.length) this.#ackDue = true;
      if (this.#syncDue || this.#ackDue) this.#kick();
    }, this.#periodMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = new Error(`outbox journal write failed: ${err.message}`);
    // Settled promises ignore this; everything still waiting learns the journal is broken.
    for (const e of this.#pending.values()) e.failWrite(this.#failure);
    this.#batchOwners = [];
    this.#unsynced = [];
  }

  /** A group commit: syncs the segments written since the last one, then their entries are stored. */
  #commit(entries: Entry[], segs: Segment[]): void {
    const commit: Promise<void> = (async () => {
      for (const s of segs) if (this.#segments.includes(s)) await this.#storage.sync(s.name);
      if (segs.length) this.#counters.syncs++;
      for (const e of entries) e.markStored();
    })().catch((err: Error) => this.#fail(err)).finally(() => {
      if (this.#committing === commit) this.#committing = undefined;
      if (!this.#failure && this.#syncDue) this.#kick();
    });
    this.#committing = commit;
  }

  /** The single writer: batches, rotation, group commits and segment deletion, one at a time. */
  async #pump(): Promise<void> {
    for (;;) {
      if ((this.#ackDue || this.#batch.length) && (this.#acks.length || this.#drops.length)) {
        this.#ackDue = false;
        if (this.#acks.length) { this.#batch.push(encodeSeqList(RecordType.Ack, this.#acks)); this.#batchOwners.push(undefined); }
        if (this.#drops.length) { this.#batch.push(encodeSeqList(RecordType.Drop, this.#drops)); this.#batchOwners.push(undefined); }
        this.#acks = [];
        this.#drops = [];
      }
      if (this.#batch.length) {
        const chunks = this.#batch;
        const owners = this.#batchOwners;
        this.#batch = [];
        this.#batchOwners = [];
        // Split the batch at segment boundaries, so a segment overshoots segmentBytes by one record at most.
        let i = 0;
        while (i < chunks.length) {
          if (this.#active.size >= this.#segmentBytes) await this.#rotate();
          const seg = this.#active;
          let j = i;
          let n = seg.size;
          while (j < chunks.length && (j === i || n < this.#segmentBytes)) n += chunks[j++]!.length;
          const data = concat(chunks.slice(i, j));
          await this.#storage.append(seg.name, data);
          this.#counters.writes++;
          seg.size += data.length;
          const entries: Entry[] = [];
          for (let k = i; k < j; k++) {
            const e = owners[k];
            if (!e) continue;
            entries.push(e);
            e.segment = seg;
            if (e.state === 'pending') seg.live++;
          }
          i = j;
          if (this.#fsync === 'always') {
            await this.#storage.sync(seg.name);
            this.#counters.syncs++;
            for (const e of entries) { e.markStored(); e.markWritten(); }
          } else {
            for (const e of entries) e.markWritten();
            if (this.#fsync === 'never') for (const e of entries) e.markStored();
            else {
              for (const e of entries) this.#unsynced.push(e);
              this.#unsyncedSegments.add(seg);
            }
          }
        }
        continue;
      }
      if (this.#syncDue && !this.#committing) {
        this.#syncDue = false;
        const entries = this.#unsynced;
        const segs = [...this.#unsyncedSegments];
        this.#unsynced = [];
        this.#unsyncedSegments.clear();
        this.#commit(entries, segs);
        continue;
      }
      this.#ackDue = false;
      await this.#deleteDone();
      if (!this.#batch.length && !this.#ackDue && !(this.#syncDue && !this.#committing)) return;
    }
  }

  async #rotate(): Promise<void> {
    const old = this.#active;
    // What was written to the old segment becomes durable no later than the next group commit.
    if (this.#fsync === 'always') await this.#storage.sync(old.name);
    const id = old.id + 1;
    this.#active = { id, name: segName(id), size: 0, live: 0 };
    this.#segments.push(this.#active);
  }

  /** Deletes the oldest segments while they hold nothing unacknowledged (never the active one). */
  async #deleteDone(): Promise<void> {
    while (this.#segments.length > 1 && this.#segments[0]!.live <= 0 && this.#segments[0] !== this.#active) {
      const s = this.#segments[0]!;
      // Not under a commit in flight (it may be syncing this segment).
      if (this.#committing) { await this.#committing; continue; }
      // Entries written there but not yet synced are settled (live 0): nothing to wait for.
      this.#unsyncedSegments.delete(s);
      await this.#storage.remove(s.name);
      this.#segments.shift();
    }
  }
}

function encodedSize(kind: string, payload: Uint8Array): number {
  return 10 + 18 + new TextEncoder().encode(kind).length + payload.length;
}

/** The bytes of one journal write (dropped once written). */
function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = transientBytes(n);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}
