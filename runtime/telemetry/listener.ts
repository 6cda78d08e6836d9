/**
 * The consumer side of the MQTT contract: decode what devices publish, check signatures, drop
 * duplicates (at-least-once delivery means resends after reconnects) and count what is missing.
 *
 * - Signatures: a signed message whose signature does not verify is always refused
 *   ('forged-signature'). With `requireSigned`, unsigned messages ('unsigned') and messages signed
 *   by a key not in the trust store ('unknown-key') are refused too. Accepted signed messages
 *   carry `signedBy` (the key's fingerprint and, when trusted, its name).
 * - Dedupe on (device, seq) with bounded memory per device: every seq at or below a floor counts as
 *   seen, plus the set of seqs seen above it; the floor follows the highest seq at `window` behind
 *   (and moves up through contiguous runs), so a device costs at most `window` remembered numbers.
 *   A seq more than `window` below the highest ever seen is counted as a duplicate.
 * - Gaps: per device, the seqs between the lowest and the highest seen that have not (yet) arrived.
 *   The device's seq counter is shared by every kind, so a listener of some kinds sees the others'
 *   seqs as gaps; a device crash may skip a few seqs (its lease) too.
 */
import { EnvelopeError, decodeMessage, type Message, type SignatureVerifier } from './envelope.js';
import { fingerprint } from './keys.js';
import { parseTopic } from './topics.js';
import type { TrustLookup } from './commands.js';

export interface ListenedMessage {
  topic: string;
  device: string;
  seq: number;
  ts: number;
  kind: string;
  body: unknown;
  /** Set for signed messages: the signer's fingerprint, and its trust-store name when trusted. */
  signedBy?: { fingerprint: string; name?: string };
  /** A retained message the broker replayed on subscribing (a device's last status): not counted in dedupe and gaps. */
  retained?: true;
}

export const LISTEN_REJECT_REASONS = ['malformed', 'oversized', 'forged-signature', 'unsigned', 'unknown-key', 'not-edgerun'] as const;
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
  /** Seqs between the lowest and highest seen that have not arrived. */
  gaps: number;
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
  /** Seqs remembered above the floor per device (default 65536). */
  window?: number;
  /** ed25519 check (default tweetnacl's; apps pass drivers/crypto's native one). */
  verify?: SignatureVerifier;
}

class SeqTracker {
  #floor: number;
  readonly #seen = new Set<number>();
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
    this.unique++;
    if (seq < this.lowest) this.lowest = seq;
    if (seq > this.highest) this.highest = seq;
    const floor = this.highest - this.window;
    if (floor > this.#floor) {
      for (const s of this.#seen) if (s <= floor) this.#seen.delete(s);
      this.#floor = floor;
    }
    while (this.#seen.delete(this.#floor + 1)) this.#floor++;
    return true;
  }

  /** Remembered seqs (bounded by the window). */
  get remembered(): number {
    return this.#seen.size;
  }

  counts(): DeviceCounts {
    return {
      received: this.received, unique: this.unique, duplicates: this.duplicates,
      gaps: Math.max(0, this.highest - this.lowest + 1 - this.unique), lowestSeq: this.lowest, highestSeq: this.highest,
    };
  }
}

export class Listener {
  readonly #devices = new Map<string, SeqTracker>();
  readonly #rejected = Object.fromEntries(LISTEN_REJECT_REASONS.map((r) => [r, 0])) as Record<ListenRejectReason, number>;
  readonly #window: number;

  constructor(private readonly o: ListenerOptions) {
    this.#window = o.window ?? 65_536;
    if (!Number.isInteger(this.#window) || this.#window < 1) throw new Error(`listener window must be an integer ≥ 1, got ${this.#window}`);
  }

  /** Decodes, checks and dedupes one incoming message. Never throws on bad input. */
  accept(topic: string, payload: Uint8Array, opts: { retained?: boolean } = {}): ListenOutcome {
    const reject = (reason: ListenRejectReason, detail: string): ListenOutcome => {
      this.#rejected[reason]++;
      return { status: 'rejected', reason, detail, topic };
    };
    const parsed = parseTopic(this.o.prefix, topic);
    if (!parsed || parsed.kind === 'cmd') return reject('not-edgerun', `not an edgerun device topic under '${this.o.prefix}': ${topic}`);
    let message: Message, signedBy: Uint8Array | undefined;
    try {
      ({ message, signedBy } = decodeMessage(payload, this.o.maxBytes ?? 1 << 20, this.o.verify));
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
    const out: ListenedMessage = { topic, device: message.device, seq: message.seq, ts: message.ts, kind: message.kind, body: message.body, ...(signer ? { signedBy: signer } : {}) };
    if (opts.retained) return { status: 'retained', message: { ...out, retained: true } };
    let tracker = this.#devices.get(message.device);
    if (!tracker) this.#devices.set(message.device, (tracker = new SeqTracker(message.seq, this.#window)));
    return { status: tracker.offer(message.seq) ? 'new' : 'duplicate', message: out };
  }

  /** Seqs remembered for a device (for tests of the memory bound). */
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
