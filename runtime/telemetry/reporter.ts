/**
 * The reporter: every outgoing edgerun message goes through here.
 *
 *   const reporter = await Reporter.open({ mqtt, address, storage, config: config.mqtt, birth: { runtime: '0.1.0', model: 'mlp' } });
 *   const p = await reporter.publish('results', body);   // resolves once in the journal file (survives SIGKILL)
 *   await p.stored;                                      // durable per the fsync policy (survives power loss)
 *   await p.delivered;                                   // the broker acknowledged (PUBACK)
 *   reporter.counters                                    // published, sent, acked, pending, resent, overflowed, corruptSkipped, …
 *   await reporter.drain(10_000);                        // until nothing is unacknowledged (rejects on timeout)
 *   await reporter.close();                              // retained status "offline", DISCONNECT, journal closed
 *   await reporter.close({ force: true });               // drop the socket instead (the broker publishes the will)
 *   await reporter.setBirth({ model: 'cnn' });           // new birth fields, republished now (publish('status', b) replaces them)
 *
 * publish() rejects with OutboxFullError when the outbox is full of what it may not drop (counted,
 * reported). Options: encoding 'json'|'cbor', signer (wrap the key with drivers/crypto/ed25519.ts:
 * tweetnacl alone signs in milliseconds), window, config = config.mqtt (its outbox section is used).
 *
 * - session: a random id chosen at every open (the device process's run, like Sparkplug B's bdSeq),
 *   in every message, so consumers dedupe on (device, session, seq) and a device whose state dir was
 *   wiped is not mistaken for a replay. Messages replayed from the journal keep the session they
 *   were made in.
 * - seq: device-monotonic, one counter for every kind, never reused after a crash: the next seq is
 *   above both the journal's highest and a lease persisted in `seq.state` ahead of use.
 * - Routing per KIND_POLICY (topics.ts): durable kinds go through the outbox (runtime/telemetry/
 *   outbox.ts) — journaled before publish, removed on PUBACK, replayed after a restart, resent in
 *   seq order after every reconnect; telemetry carries an MQTT 5 message expiry (and is dropped
 *   instead of sent once expired). `status` is the retained birth, published on every connect; the
 *   will (retained status "offline") goes with every CONNECT. Both seqs are reserved together
 *   before connecting, the birth's first, and both carry the time of the CONNECT: a connection's
 *   birth and will share `ts`, the will's seq is the next one, so ordering status messages by seq
 *   (or by ts, then seq) puts the will after the birth it ends and before the next connection's
 *   birth. The birth names its will (`willSeq`, like Sparkplug's bdSeq): a re-birth on the same
 *   connection (setBirth) has a later seq and ts but the same `willSeq`, so consumers match an
 *   "offline" to the birth whose `willSeq` is its seq.
 * - At most `window` QoS 1 publishes in flight (and no more than the broker's Receive Maximum).
 * - MQTT 5: content type (application/json | application/cbor) on every message; user property
 *   `kind` on status, telemetry and events (not on results/detections: it costs throughput).
 * - Overflow of the outbox is counted and reported as an `events` message {type: 'outbox-overflow'}.
 *
 * `storage` holds the journal and `seq.state`: give the reporter a directory of its own.
 */
import { STATE_FILE_MAX_BYTES, type Storage } from '../ports.js';
import { CONTENT_TYPE, encodeMessage, type Encoding, type SigningKey } from './envelope.js';
import { NotConnectedError, PublishRejectedError, type ConnectInfo, type MqttPort, type PublishOptions } from './mqtt-port.js';
import { Outbox, OutboxFullError, type OutboxEntry, type OutboxOptions } from './outbox.js';
import { deviceTopic, KIND_POLICY, OUTGOING_KINDS, type DeviceAddress, type OutgoingKind } from './topics.js';
import { parseJson } from '../json.js';

/** The reporting part of config.mqtt (runtime/config.ts); every field optional here. */
export interface ReporterConfig {
  encoding?: Encoding;
  window?: number;
  outbox?: Omit<OutboxOptions, 'now' | 'onOverflow' | 'droppableKinds' | 'resultKinds'> & { dir?: string };
}

export interface ReporterOptions {
  mqtt: MqttPort;
  address: DeviceAddress;
  /** Journal and seq state. */
  storage: Storage;
  config?: ReporterConfig;
  /** Overrides config.encoding. */
  encoding?: Encoding;
  /** Sign every outgoing message (ed25519 envelope). */
  signer?: SigningKey;
  /** Overrides config.window. */
  window?: number;
  /** Birth fields (runtime version, model, backend, profile, …), published with state "online". */
  birth?: Record<string, unknown>;
  /** Wall clock, ms since the epoch (message ts, telemetry expiry). */
  now?: () => number;
  /** This run's session id (default: 64 random bits in hex). */
  session?: string;
  /** Connect right away (default true). */
  connect?: boolean;
  /** Failures nobody awaits (birth publish, overflow report). */
  onError?: (e: Error) => void;
}

export interface Published {
  seq: number;
  /** Durable per the fsync policy. Non-durable kinds: resolved. */
  stored: Promise<void>;
  /** Acknowledged by the broker. Rejects when the message was dropped (overflow, expiry, broker refusal). */
  delivered: Promise<void>;
}

export interface ReporterCounters {
  /** Messages accepted by publish(). */
  published: number;
  /** PUBLISH packets sent (first sends and resends). */
  sent: number;
  acked: number;
  /** Durable messages not yet acknowledged. */
  pending: number;
  inflight: number;
  /** Sent again after a reconnect, or replayed from the journal after a restart. */
  resent: number;
  /** Dropped or refused for lack of room in the outbox. */
  overflowed: number;
  /** Telemetry dropped because its expiry passed before it could be sent. */
  expired: number;
  /** Refused by the broker (PUBACK reason code ≥ 0x80); dropped, not retried. */
  rejected: number;
  /** Corrupt regions of the journal skipped at open. */
  corruptSkipped: number;
  recovered: number;
  connects: number;
}

const SEQ_FILE = 'seq.state';
/** Kinds published at inference rate. */
const HOT_KINDS: ReadonlySet<OutgoingKind> = new Set(['results', 'detections']);
/** Sequence numbers reserved per write of seq.state: a crash skips at most this many. */
const SEQ_LEASE = 10_000;
/** The highest seq.state lease taken as is: 2^32 messages short of where numbers stop being exact. */
const MAX_LEASED_SEQ = Number.MAX_SAFE_INTEGER - 2 ** 32;
const REPORT_EVERY_MS = 1000;

export class Reporter {
  readonly #mqtt: MqttPort;
  readonly #address: DeviceAddress;
  readonly #storage: Storage;
  readonly #outbox: Outbox;
  readonly #encoding: Encoding;
  readonly #signer: SigningKey | undefined;
  readonly #window: number;
  readonly #now: () => number;
  readonly #onError: (e: Error) => void;
  readonly #topics: Record<OutgoingKind, string>;
  #birth: Record<string, unknown>;
  readonly #session: string;
  /** Seqs of the birth and the will of the next (or current) connection, and when its CONNECT went out. */
  #birthSeq = -1;
  #willSeq = -1;
  #connectTs: number | undefined;
  readonly #encodeOptions: { encoding: Encoding; signer?: SigningKey };
  /** The same, for messages whose bytes only pass into the outbox's journal record. */
  readonly #journaledEncodeOptions: { encoding: Encoding; signer?: SigningKey; transient: true };
  /** Publish options per kind, made once (expiring kinds get a fresh copy with the remaining expiry). */
  readonly #publishOptions: Record<string, PublishOptions>;
  #leaseWrites: Promise<void> = Promise.resolve();

  #next = 0;
  #lease = 0;
  #leasing: Promise<void> | undefined;

  /** Written entries waiting to be sent on this connection, in seq order (head index: cheap shift). */
  #queue: OutboxEntry[] = [];
  #head = 0;
  #inflight = 0;
  #gen = 0;
  #limit = 1;
  #closed = false;
  #drainWaiters = new Set<() => void>();
  #overflowReport: { dropped: number; refused: number; kinds: Record<string, number> } | undefined;
  #overflowTimer: ReturnType<typeof setTimeout> | undefined;
  #lastReport = -Infinity;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #c = { published: 0, sent: 0, acked: 0, resent: 0, overflowed: 0, expired: 0, rejected: 0, connects: 0 };

  private constructor(o: ReporterOptions, outbox: Outbox) {
    this.#mqtt = o.mqtt;
    this.#address = o.address;
    this.#storage = o.storage;
    this.#outbox = outbox;
    this.#encoding = o.encoding ?? o.config?.encoding ?? 'json';
    this.#signer = o.signer;
    this.#window = o.window ?? o.config?.window ?? 256;
    this.#limit = this.#window;
    this.#now = o.now ?? Date.now;
    this.#onError = o.onError ?? (() => undefined);
    this.#birth = o.birth ?? {};
    this.#session = o.session ?? randomSession();
    this.#encodeOptions = { encoding: this.#encoding, ...(this.#signer ? { signer: this.#signer } : {}) };
    this.#journaledEncodeOptions = { ...this.#encodeOptions, transient: true };
    // User properties only on the low-rate kinds: mqtt.js encodes them per packet, which cost ~25 % of
    // the QoS 1 results rate in bench/mqtt.ts (0.72× → 0.98× of bare mqtt.js without them).
    this.#publishOptions = Object.fromEntries(OUTGOING_KINDS.map((k) => [k, {
      qos: KIND_POLICY[k].qos, retain: KIND_POLICY[k].retain, contentType: CONTENT_TYPE[this.#encoding],
      ...(HOT_KINDS.has(k) ? {} : { userProperties: { kind: k } }),
    } satisfies PublishOptions]));
    this.#topics = Object.fromEntries(OUTGOING_KINDS.map((k) => [k, deviceTopic(o.address, k)])) as Record<OutgoingKind, string>;
  }

  static async open(o: ReporterOptions): Promise<Reporter> {
    let r!: Reporter;
    const outbox = await Outbox.open(o.storage, {
      ...(o.config?.outbox ?? {}),
      ...(o.now ? { now: o.now } : {}),
      droppableKinds: ['telemetry', 'events'],
      resultKinds: ['results', 'detections'],
      onOverflow: (dropped) => r.#overflowed(dropped, 0),
    });
    r = new Reporter(o, outbox);
    await r.#initSeq();
    r.#unsubscribe.push(
      o.mqtt.onConnect((info) => r.#connected(info)),
      o.mqtt.onClose(() => r.#disconnected()),
    );
    r.#setWill();
    if (o.connect ?? true) o.mqtt.connect();
    if (o.mqtt.connected) r.#connected({ sessionPresent: false, protocolVersion: o.mqtt.protocolVersion, receiveMaximum: 65_535 });
    return r;
  }

  /** This run's session id, in every message it makes. */
  get session(): string { return this.#session; }

  /** The last seq handed out (−1 before the first). */
  get lastSeq(): number { return this.#next - 1; }

  get counters(): ReporterCounters {
    const oc = this.#outbox.counters;
    return {
      ...this.#c, overflowed: oc.overflowed, pending: oc.pending, inflight: this.#inflight,
      corruptSkipped: oc.corruptRegions, recovered: oc.recovered,
    };
  }

  /** The outbox's own counters (bytes, segments, syncs, …). */
  get outboxCounters() { return this.#outbox.counters; }

  /**
   * Assigns seq and ts, encodes, and sends per the kind's policy. Resolves once the message is
   * accepted: durable kinds are then in the journal file. Rejects with OutboxFullError when the
   * outbox has no room (counted, reported).
   */
  publish(kind: OutgoingKind, body: unknown): Promise<Published> {
    if (this.#closed) return Promise.reject(new Error('reporter is closed'));
    const policy = KIND_POLICY[kind];
    if (!policy) return Promise.reject(new Error(`unknown message kind "${kind}"`));
    if (kind === 'status') {
      // A status is the (new) birth: remembered for every later connect.
      this.#birth = typeof body === 'object' && body !== null ? { ...(body as Record<string, unknown>) } : { value: body };
      return this.#publishBirth(true).then((seq) => ({ seq, stored: Promise.resolve(), delivered: Promise.resolve() }));
    }
    // Fast path: the lease covers the next seq (it is extended ahead of need), so no await here.
    if (this.#next >= this.#lease) return this.#takeSeq().then((seq) => this.#publishDurable(kind, body, seq));
    return this.#publishDurable(kind, body, this.#takeSeqSync());
  }

  #publishDurable(kind: OutgoingKind, body: unknown, seq: number): Promise<Published> {
    const now = this.#now();
    let payload: Uint8Array;
    try {
      payload = encodeMessage({ device: this.#address.device, session: this.#session, seq, ts: now, kind, body }, this.#journaledEncodeOptions);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return new Promise<Published>((resolve, reject) => {
      let e: OutboxEntry;
      try {
        e = this.#outbox.append(seq, kind, payload, now, (err) => {
          if (err) { reject(err); return; }
          if (this.#mqtt.connected && e.state === 'pending' && !this.#closed) {
            this.#queue.push(e);
            this.#pump();
          }
          resolve(new Handle(e));
        });
      } catch (err) {
        if (err instanceof OutboxFullError) this.#overflowed([], 1, kind);
        reject(err as Error);
        return;
      }
      this.#c.published++;
    });
  }

  /** Updates birth fields and republishes the birth (when connected). */
  async setBirth(fields: Record<string, unknown>): Promise<void> {
    this.#birth = { ...this.#birth, ...fields };
    if (this.#mqtt.connected) await this.#publishBirth(true);
  }

  /** Resolves when nothing is unacknowledged; rejects after timeoutMs. */
  drain(timeoutMs = 30_000): Promise<void> {
    if (this.#outbox.counters.pending === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(t);
        this.#drainWaiters.delete(done);
        resolve();
      };
      const t = setTimeout(() => {
        this.#drainWaiters.delete(done);
        reject(new Error(`outbox not drained within ${timeoutMs} ms (${this.#outbox.counters.pending} unacknowledged)`));
      }, timeoutMs);
      this.#drainWaiters.add(done);
    });
  }

  /**
   * Publishes the retained status "offline" (when connected), disconnects and closes the journal.
   * With `force`, drops the connection without a goodbye (the broker then publishes the will).
   * Unacknowledged messages stay in the journal for the next start.
   */
  async close(opts: { force?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#overflowTimer);
    if (!opts.force && this.#mqtt.connected) {
      const seq = this.#takeSeqSync();
      const offline = this.#status({ state: 'offline', reason: 'shutdown' }, seq);
      await withTimeout(this.#mqtt.publish(this.#topics.status, offline, this.#statusOptions()), 5_000).catch((e: Error) => this.#onError(e));
    }
    for (const u of this.#unsubscribe) u();
    await this.#mqtt.end(opts.force ? { force: true } : {});
    await this.#outbox.close();
    await this.#persistLease(this.#next).catch((e: Error) => this.#onError(e));
  }

  // --- sequence numbers -------------------------------------------------------------------------

  async #initSeq(): Promise<void> {
    const raw = await this.#storage.read(SEQ_FILE, STATE_FILE_MAX_BYTES);
    let leased = 0;
    if (raw) {
      try {
        const v = parseJson(new TextDecoder().decode(raw), SEQ_FILE) as { next?: unknown };
        if (typeof v.next === 'number' && Number.isSafeInteger(v.next) && v.next >= 0 && v.next <= MAX_LEASED_SEQ) leased = v.next;
      } catch {
        // A torn seq.state cannot happen (atomic replace); a hand-edited one falls back to the journal
        // (numbers may repeat then, but under this run's new session, so consumers keep them apart).
      }
    }
    this.#next = Math.max(leased, this.#outbox.highestSeq + 1);
    await this.#persistLease(this.#next + SEQ_LEASE);
  }

  /** Writes of seq.state go one after another (each replaces the same file through one temporary). */
  #persistLease(limit: number): Promise<void> {
    const write = this.#leaseWrites.then(async () => {
      await this.#storage.writeAtomic(SEQ_FILE, new TextEncoder().encode(JSON.stringify({ next: limit })));
      this.#lease = Math.max(this.#lease, limit);
    });
    this.#leaseWrites = write.catch(() => undefined);
    return write;
  }

  #extendLease(): void {
    if (this.#leasing) return;
    this.#leasing = this.#persistLease(this.#next + SEQ_LEASE)
      .catch((e: Error) => this.#onError(e))
      .finally(() => { this.#leasing = undefined; });
  }

  #takeSeqSync(): number {
    const s = this.#next++;
    // Extend the lease well before it runs out, so publish() rarely waits for it.
    if (this.#next >= this.#lease - SEQ_LEASE / 2) this.#extendLease();
    return s;
  }

  async #takeSeq(): Promise<number> {
    // Never hand out a seq that the persisted lease does not cover.
    while (this.#next >= this.#lease) {
      this.#extendLease();
      await this.#leasing;
    }
    return this.#takeSeqSync();
  }

  // --- connection ---------------------------------------------------------------------------------

  #status(body: Record<string, unknown>, seq: number, ts = this.#now()): Uint8Array {
    return encodeMessage({ device: this.#address.device, session: this.#session, seq, ts, kind: 'status', body }, this.#encodeOptions);
  }

  #statusOptions(): PublishOptions {
    return this.#publishOptions.status!;
  }

  /** Reserves the next connection's birth and will seqs; the will is made at each CONNECT, with its time. */
  #setWill(): void {
    this.#birthSeq = this.#takeSeqSync();
    const willSeq = (this.#willSeq = this.#takeSeqSync());
    this.#connectTs = undefined;
    this.#mqtt.setWill(() => {
      this.#connectTs = this.#now();
      return { topic: this.#topics.status, payload: this.#status({ state: 'offline', reason: 'connection lost' }, willSeq, this.#connectTs), ...this.#statusOptions() };
    });
  }

  /** The birth of this connection (reserved seq, CONNECT time), or with `rebirth` a new one under a fresh seq. */
  async #publishBirth(rebirth: boolean): Promise<number> {
    const seq = rebirth ? await this.#takeSeq() : this.#birthSeq;
    if (!this.#mqtt.connected) return seq;
    const body = { state: 'online', device: this.#address.device, fleet: this.#address.fleet, session: this.#session, willSeq: this.#willSeq, ...this.#birth };
    await this.#mqtt.publish(this.#topics.status, this.#status(body, seq, rebirth ? this.#now() : this.#connectTs ?? this.#now()), this.#statusOptions());
    return seq;
  }

  #connected(info: ConnectInfo): void {
    if (this.#closed) return;
    this.#c.connects++;
    this.#gen++;
    this.#inflight = 0;
    this.#limit = Math.max(1, Math.min(this.#window, info.receiveMaximum));
    // Birth first (retained), then everything unacknowledged in seq order.
    this.#publishBirth(false).catch((e: Error) => { if (!(e instanceof NotConnectedError)) this.#onError(e); });
    this.#queue = this.#outbox.pending().filter((e) => e.isWritten);
    this.#head = 0;
    this.#pump();
  }

  #disconnected(): void {
    this.#gen++;
    this.#inflight = 0;
    this.#queue = [];
    this.#head = 0;
    // The next CONNECT carries a will with a fresh seq.
    if (!this.#closed) this.#setWill();
  }

  #pump(): void {
    const gen = this.#gen;
    while (this.#inflight < this.#limit && this.#head < this.#queue.length && this.#mqtt.connected) {
      const e = this.#queue[this.#head++]!;
      if (e.state !== 'pending') continue;
      const policy = KIND_POLICY[e.kind as OutgoingKind];
      let opts = this.#publishOptions[e.kind]!;
      if (policy?.expirySeconds !== undefined) {
        const left = policy.expirySeconds - (this.#now() - e.createdAt) / 1000;
        if (left <= 0) {
          this.#outbox.drop(e.seq, 'expired');
          this.#c.expired++;
          this.#checkDrained();
          continue;
        }
        opts = { ...opts, messageExpirySeconds: Math.ceil(left) };
      }
      if (e.sends++ > 0 || e.recovered) this.#c.resent++;
      this.#inflight++;
      this.#c.sent++;
      this.#mqtt.publish(this.#topics[e.kind as OutgoingKind] ?? deviceTopic(this.#address, e.kind as OutgoingKind), e.payload, opts).then(() => {
        // An acknowledgement counts whichever connection it came on.
        if (e.state === 'pending') this.#c.acked++;
        this.#outbox.ack(e.seq);
        this.#settled(gen);
      }, (err: Error) => {
        if (err instanceof PublishRejectedError) {
          // A message the broker refuses (too large, not authorised) would be refused forever.
          this.#outbox.drop(e.seq, `refused by the broker: ${err.message}`);
          this.#c.rejected++;
          this.#onError(err);
        }
        this.#settled(gen);
      });
    }
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #settled(gen: number): void {
    if (gen === this.#gen) {
      this.#inflight--;
      this.#pump();
    }
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#drainWaiters.size && this.#outbox.counters.pending === 0) for (const w of [...this.#drainWaiters]) w();
  }

  // --- overflow -----------------------------------------------------------------------------------

  #overflowed(dropped: OutboxEntry[], refused: number, refusedKind?: string): void {
    const r = (this.#overflowReport ??= { dropped: 0, refused: 0, kinds: {} });
    r.dropped += dropped.length;
    r.refused += refused;
    for (const e of dropped) r.kinds[e.kind] = (r.kinds[e.kind] ?? 0) + 1;
    if (refusedKind) r.kinds[refusedKind] = (r.kinds[refusedKind] ?? 0) + refused;
    if (this.#overflowTimer || this.#closed) return;
    // One report per second at most: the report is itself an (expendable) message.
    const wait = Math.max(0, this.#lastReport + REPORT_EVERY_MS - this.#now());
    this.#overflowTimer = setTimeout(() => {
      this.#overflowTimer = undefined;
      const report = this.#overflowReport;
      this.#overflowReport = undefined;
      if (!report || this.#closed) return;
      this.#lastReport = this.#now();
      this.publish('events', { type: 'outbox-overflow', ...report, totalOverflowed: this.#outbox.counters.overflowed })
        .catch((e: Error) => { if (!(e instanceof OutboxFullError)) this.#onError(e); });
    }, wait);
  }
}

/** What publish() resolves to; the promises are made only when read. */
class Handle implements Published {
  constructor(readonly entry: OutboxEntry) {}
  get seq(): number { return this.entry.seq; }
  get stored(): Promise<void> { return this.entry.stored; }
  get delivered(): Promise<void> { return this.entry.delivered; }
}

/** 64 random bits in hex (Web Crypto, global in Node ≥ 19 and in browsers). */
function randomSession(): string {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}
