/**
 * The consumer side of the MQTT contract: decode what devices publish, check signatures, drop
 * duplicates (at-least-once delivery means resends after reconnects) and count what is missing.
 *
 * - Signatures: a signed message whose signature does not verify is always refused
 *   ('forged-signature'). With `requireSigned`, unsigned messages ('unsigned') and messages signed
 *   by a key not in the trust store ('unknown-key') are refused too. Accepted signed messages
 *   carry `signedBy` (the key's fingerprint and, when trusted, its name).
 * - Dedupe on (device, session, seq) — the session names one run of the device process
 *   (envelope.ts), so a device that starts over with a wiped state dir (seq back at 0) is new, not a
 *   replay — and apart per signer: the messages of each signing key, and the unsigned ones, have
 *   dedupe state of their own. Nobody without a device's key can make its genuine messages look
 *   like duplicates (a forged unsigned message with a huge seq moves only the unsigned state); an
 *   unsigned fleet is as safe as the broker's ACL (SECURITY.md). With `requireSigned`, unsigned
 *   messages are refused before they touch any state (counted in `rejected.unsigned`).
 * - Memory per stream (device, signer, session): every seq at or below a floor counts as seen, plus
 *   the set of seqs seen above it; the floor follows the highest seq at `window` behind (and moves
 *   up through contiguous runs), so a stream costs at most `window` remembered numbers. A seq more
 *   than `window` below the highest ever seen is counted as a duplicate. A device keeps its
 *   `maxSessions` most recently active streams, and they share its `window` of remembered seqs;
 *   a stream dropped for either comes back as new (a duplicate shown, never a message lost).
 *   Devices are capped too (`maxDevices`): past the cap, messages of devices not yet seen are
 *   refused ('too-many-devices'), so a flood of invented device ids cannot grow the memory.
 * - Gaps: per stream, the seqs between the lowest and the highest seen that have not (yet) arrived,
 *   summed per device. The device's seq counter is shared by every kind, so a listener of some
 *   kinds sees the others' seqs as gaps; a device crash may skip a few seqs (its lease) too. The
 *   seq a birth sets aside for its will (`willSeq`) is no gap: it is sent only if the device dies.
 */
import { EnvelopeError, decodeMessage, type Message, type SignatureVerifier } from './envelope.js';
import { fingerprint } from './keys.js';
import { parseTopic } from './topics.js';
import type { TrustLookup } from './commands.js';

export interface ListenedMessage {
  topic: string;
  device: string;
  /** The device process run (absent on messages of devices from before sessions). */
  session?: string;
  seq: number;
  ts: number;
  kind: string;
  body: unknown;
  /** Set for signed messages: the signer's fingerprint, and its trust-store name when trusted. */
  signedBy?: { fingerprint: string; name?: string };
  /** A retained message the broker replayed on subscribing (a device's last status): not counted in dedupe and gaps. */
  retained?: true;
}

export const LISTEN_REJECT_REASONS = ['malformed', 'oversized', 'forged-signature', 'unsigned', 'unknown-key', 'not-edgerun', 'too-many-devices'] as const;
export type ListenRejectReason = (typeof LISTEN_REJECT_REASONS)[number];

export type ListenOutcome =
  | { status: 'new'; message: ListenedMessage }
  | { status: 'duplicate'; message: ListenedMessage }
  /** The broker's retained copy (delivered on subscribing): shown, not deduped or counted. */
  | { status: 'retained'; message: ListenedMessage }
  | { status: 'rejected'; reason: ListenRejectReason; detail: string; topic: string };

export interface DeviceCounts {
  /** Messages accepted (signature and shape), duplicates included. */
  received: number;
  unique: number;
  duplicates: number;
  /** Per stream, seqs between the lowest and highest seen that have not arrived; summed. */
  gaps: number;
  /** Streams (signer, session) seen: 1 for a device that never restarted. */
  sessions: number;
  /** The most recently active stream's session ('' for messages without one) and its seq range. */
  session: string;
  lowestSeq: number;
  highestSeq: number;
}

export interface ListenSummary {
  received: number;
  unique: number;
  duplicates: number;
  gaps: number;
  rejected: Record<ListenRejectReason, number>;
  devices: Record<string, DeviceCounts>;
}

export interface ListenerOptions {
  prefix: string;
  trust?: TrustLookup;
  requireSigned?: boolean;
  maxBytes?: number;
  /** Seqs remembered above the floor per stream (default 65536). */
  window?: number;
  /** Streams (signer, session) remembered per device (default 8). */
  maxSessions?: number;
  /** Devices tracked (default 100,000); messages of further devices are refused. */
  maxDevices?: number;
  /** ed25519 check (default tweetnacl's; apps pass drivers/crypto's native one). */
  verify?: SignatureVerifier;
}

class SeqTracker {
  #floor: number;
  readonly #seen = new Set<number>();
  /** Seqs set aside for a will (announced by the birth) that have not arrived: not gaps. */
  readonly #reserved = new Set<number>();
  /** Reserved seqs the floor passed without their arriving. */
  #reservedPassed = 0;
  received = 0;
  unique = 0;
  duplicates = 0;
  lowest: number;
  highest: number;

  constructor(first: number, private readonly window: number) {
    this.#floor = first - window - 1;
    this.lowest = first;
    this.highest = first;
  }

  /** True when `seq` is new. */
  offer(seq: number): boolean {
    this.received++;
    if (seq <= this.#floor || this.#seen.has(seq)) {
      this.duplicates++;
      return false;
    }
    this.#seen.add(seq);
    this.#reserved.delete(seq);
    this.unique++;
    if (seq < this.lowest) this.lowest = seq;
    if (seq > this.highest) this.highest = seq;
    const floor = this.highest - this.window;
    if (floor > this.#floor) {
      for (const s of this.#seen) if (s <= floor) this.#seen.delete(s);
      for (const r of this.#reserved) if (r <= floor) { this.#reserved.delete(r); if (r >= this.lowest) this.#reservedPassed++; }
      this.#floor = floor;
    }
    while (this.#seen.delete(this.#floor + 1)) this.#floor++;
    return true;
  }

  /** Remembered seqs (bounded by the window). */
  get remembered(): number {
    return this.#seen.size;
  }

  /** A seq the device set aside and may never send (its will's). */
  reserve(seq: number): void {
    if (seq > this.#floor && !this.#seen.has(seq) && this.#reserved.size < this.window) this.#reserved.add(seq);
  }

  get gaps(): number {
    let reserved = this.#reservedPassed;
    for (const r of this.#reserved) if (r >= this.lowest && r <= this.highest) reserved++;
    return Math.max(0, this.highest - this.lowest + 1 - this.unique - reserved);
  }
}

/** A device's streams, one SeqTracker per (signer, session), the least recently active dropped beyond `max`. */
class DeviceStreams {
  /** Insertion order = activity order: the most recently active stream last. */
  readonly #streams = new Map<string, { session: string; tracker: SeqTracker }>();
  #latestKey = '';
  #sessions = 0;
  /** Counts of the streams dropped from memory. */
  readonly #retired = { received: 0, unique: 0, duplicates: 0, gaps: 0 };

  constructor(private readonly window: number, private readonly max: number) {}

  /** True when `seq` is new in the stream of (signer, session). */
  offer(signer: string, session: string, seq: number): boolean {
    const key = `${signer}\n${session}`;
    let s = this.#streams.get(key);
    if (!s) {
      s = { session, tracker: new SeqTracker(seq, this.window) };
      this.#sessions++;
      if (this.#streams.size >= this.max) this.#retire(this.#streams.keys().next().value!);
    } else if (key !== this.#latestKey) {
      this.#streams.delete(key);
    }
    this.#streams.set(key, s);
    this.#latestKey = key;
    const isNew = s.tracker.offer(seq);
    // The device's streams share one window of memory: scattered seqs in many streams (a forger's)
    // cost the least recently active streams their memory, never more than that.
    while (this.#streams.size > 1 && this.remembered > this.window) this.#retire(this.#streams.keys().next().value!);
    return isNew;
  }

  /** The birth of (signer, session) set `seq` aside for its will. */
  reserve(signer: string, session: string, seq: number): void {
    this.#streams.get(`${signer}\n${session}`)?.tracker.reserve(seq);
  }

  #retire(key: string): void {
    const t = this.#streams.get(key)!.tracker;
    this.#streams.delete(key);
    this.#retired.received += t.received;
    this.#retired.unique += t.unique;
    this.#retired.duplicates += t.duplicates;
    this.#retired.gaps += t.gaps;
  }

  get remembered(): number {
    let n = 0;
    for (const s of this.#streams.values()) n += s.tracker.remembered;
    return n;
  }

  counts(): DeviceCounts {
    const c = { ...this.#retired };
    for (const { tracker: t } of this.#streams.values()) {
      c.received += t.received;
      c.unique += t.unique;
      c.duplicates += t.duplicates;
      c.gaps += t.gaps;
    }
    const latest = this.#streams.get(this.#latestKey)!;
    return { ...c, sessions: this.#sessions, session: latest.session, lowestSeq: latest.tracker.lowest, highestSeq: latest.tracker.highest };
  }
}

export class Listener {
  readonly #devices = new Map<string, DeviceStreams>();
  readonly #rejected = Object.fromEntries(LISTEN_REJECT_REASONS.map((r) => [r, 0])) as Record<ListenRejectReason, number>;
  readonly #window: number;
  readonly #maxSessions: number;
  readonly #maxDevices: number;

  constructor(private readonly o: ListenerOptions) {
    this.#window = o.window ?? 65_536;
    this.#maxSessions = o.maxSessions ?? 8;
    this.#maxDevices = o.maxDevices ?? 100_000;
    if (!Number.isInteger(this.#window) || this.#window < 1) throw new Error(`listener window must be an integer ≥ 1, got ${this.#window}`);
    if (!Number.isInteger(this.#maxSessions) || this.#maxSessions < 1) throw new Error(`listener maxSessions must be an integer ≥ 1, got ${this.#maxSessions}`);
    if (!Number.isInteger(this.#maxDevices) || this.#maxDevices < 1) throw new Error(`listener maxDevices must be an integer ≥ 1, got ${this.#maxDevices}`);
  }

  /**
   * Decodes, checks and dedupes one incoming message. Never throws on bad input.
   * `contentType`: the MQTT 5 content type it came with, if any.
   */
  accept(topic: string, payload: Uint8Array, opts: { retained?: boolean; contentType?: string } = {}): ListenOutcome {
    const reject = (reason: ListenRejectReason, detail: string): ListenOutcome => {
      this.#rejected[reason]++;
      return { status: 'rejected', reason, detail, topic };
    };
    const parsed = parseTopic(this.o.prefix, topic);
    if (!parsed || parsed.kind === 'cmd') return reject('not-edgerun', `not an edgerun device topic under '${this.o.prefix}': ${topic}`);
    let message: Message, signedBy: Uint8Array | undefined;
    try {
      ({ message, signedBy } = decodeMessage(payload, this.o.maxBytes ?? 1 << 20, this.o.verify, opts.contentType));
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      return reject(e.code === 'bad-signature' ? 'forged-signature' : e.code === 'too-large' ? 'oversized' : 'malformed', e.message);
    }
    if (message.device !== parsed.device) return reject('malformed', `message of device '${message.device}' on the topic of '${parsed.device}'`);
    if (message.kind !== parsed.kind) return reject('malformed', `message of kind '${message.kind}' on a '${parsed.kind}' topic`);
    let signer: ListenedMessage['signedBy'];
    if (signedBy) {
      const trusted = this.o.trust?.trusted(signedBy);
      if (!trusted && this.o.requireSigned) return reject('unknown-key', `signer ${fingerprint(signedBy)} is not trusted`);
      signer = trusted ? { fingerprint: trusted.fingerprint, name: trusted.name } : { fingerprint: fingerprint(signedBy) };
    } else if (this.o.requireSigned) {
      return reject('unsigned', 'unsigned message (--require-signed)');
    }
    const out: ListenedMessage = {
      topic, device: message.device, ...(message.session !== undefined ? { session: message.session } : {}),
      seq: message.seq, ts: message.ts, kind: message.kind, body: message.body, ...(signer ? { signedBy: signer } : {}),
    };
    if (opts.retained) return { status: 'retained', message: { ...out, retained: true } };
    let streams = this.#devices.get(message.device);
    if (!streams) {
      if (this.#devices.size >= this.#maxDevices) return reject('too-many-devices', `device '${message.device}' is beyond the ${this.#maxDevices} devices tracked`);
      this.#devices.set(message.device, (streams = new DeviceStreams(this.#window, this.#maxSessions)));
    }
    const stream = [signer?.fingerprint ?? 'unsigned', message.session ?? ''] as const;
    const isNew = streams.offer(...stream, message.seq);
    const body = message.body as { state?: unknown; willSeq?: unknown } | null;
    if (isNew && message.kind === 'status' && body?.state === 'online' && Number.isSafeInteger(body.willSeq)) streams.reserve(...stream, body.willSeq as number);
    return { status: isNew ? 'new' : 'duplicate', message: out };
  }

  /** Seqs remembered for a device, over its streams (for tests of the memory bound). */
  remembered(device: string): number {
    return this.#devices.get(device)?.remembered ?? 0;
  }

  summary(): ListenSummary {
    const devices: Record<string, DeviceCounts> = {};
    let received = 0, unique = 0, duplicates = 0, gaps = 0;
    for (const [d, t] of [...this.#devices].sort(([a], [b]) => a.localeCompare(b))) {
      const c = t.counts();
      devices[d] = c;
      received += c.received;
      unique += c.unique;
      duplicates += c.duplicates;
      gaps += c.gaps;
    }
    return { received, unique, duplicates, gaps, rejected: { ...this.#rejected }, devices };
  }
}
