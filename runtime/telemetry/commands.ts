/**
 * Signed commands in: `<prefix>/<fleet>/<device>/cmd/<name>`, payload a signed envelope
 * (runtime/telemetry/envelope.ts) of a message `{device, seq, ts, kind: 'cmd', body: {name, args, nonce}}`.
 *
 * A command runs only when every check passes, in this order (the first failure is the reason):
 *   oversized        payload larger than maxCommandBytes
 *   unknown-key      the envelope names a signer key that is not in the trust store (checked before
 *                    the signature: tweetnacl's ed25519 costs milliseconds, strangers get none)
 *   malformed        not JSON/CBOR, not a message, kind ≠ 'cmd', body not {name, args, nonce}, or
 *                    the topic's command name ≠ body.name
 *   forged-signature a signature that does not verify
 *   unsigned         no signature at all
 *   wrong-device     message.device (or the topic's device) is not this device
 *   stale            ts further than ± windowMs from the device's wall clock (past or future)
 *   replayed         (signer, nonce) already accepted within the window — remembered through the
 *                    Storage port, so a replay after a restart is refused too; older ones are stale
 *   rate-limited     more commands inside one window than the replay memory holds (bounded), or
 *                    more waiting to be checked than attach() queues
 *   unknown-command  no such command
 *   bad-args         args fail the command's zod schema
 *   storage-error    the trust store could not be read or the acceptance could not be recorded
 * The trust store is re-read for every command, so `edgerun keys trust/untrust` apply at once.
 * Each rejection is counted by reason and reported as an `events` body
 * {type: 'command-rejected', reason, detail, ...}; an accepted command's handler runs on the
 * CommandTarget and its outcome is reported as {type: 'command-result', ok, result | error, ...}.
 * Acceptance is recorded (fsync'd) before the handler runs: a crash in between loses the command
 * rather than running it twice (at most once).
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { parseJson } from '../json.js';
import { STATE_FILE_MAX_BYTES, type Clock, type Storage } from '../ports.js';
import type { PlacementPolicy } from '../backend.js';
import { governorPolicySchema, type GovernorPolicyInput } from '../power/policy.js';
import { decode as cborDecode } from 'cborg';
import { EnvelopeError, decodeMessage, encodeMessage, encodingOf, fromBase64, toBase64, type Encoding, type SignatureVerifier, type SigningKey } from './envelope.js';
import { fingerprint } from './keys.js';
import type { MqttPort } from './mqtt-port.js';
import { commandFilter, parseTopic, type DeviceAddress } from './topics.js';

export const REJECT_REASONS = [
  'oversized', 'malformed', 'forged-signature', 'unsigned', 'unknown-key', 'wrong-device', 'stale', 'replayed',
  'rate-limited', 'unknown-command', 'bad-args', 'storage-error',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** What the commands act on; the device daemon implements it with the real scheduler, governor, registry, reporter. */
export interface CommandTarget {
  /** Merge a partial governor policy (Governor.setPolicy); throw to refuse it. Returns e.g. the new policy. */
  setPowerBudget(change: GovernorPolicyInput): unknown;
  /** Placement of one model (or the default when `model` is absent). */
  setPlacement(change: { model?: string; policy: PlacementPolicy }): unknown;
  /** Publish a telemetry snapshot now. */
  publishSnapshot(): unknown;
  pauseStream(stream: string): unknown;
  resumeStream(stream: string): unknown;
  /** Starts a deployment (runtime/deploy); resolves once it is under way — progress goes to deploy/status. Absent: the device takes none. */
  deploy?(args: DeployArgs): unknown;
  /** Switches a model back to its previous version. */
  rollback?(args: { model?: string }): unknown;
}

// ---- argument schemas -----------------------------------------------------------------------

const policy = governorPolicySchema.shape;
/** A budget field may be set, or cleared with null. */
const clearable = <T extends z.ZodType>(s: T) => z.union([z.null(), s]).optional();
const budgetArgs = z.strictObject({
  enabled: z.boolean().optional(),
  powerCapW: clearable(policy.powerCapW.unwrap()),
  windowS: policy.windowS.unwrap().optional(),
  energyBudget: clearable(policy.energyBudget.unwrap()),
  missionS: clearable(policy.missionS.unwrap()),
  batteryReservePct: clearable(policy.batteryReservePct.unwrap()),
  batteryCapacityWh: clearable(policy.batteryCapacityWh.unwrap()),
  thermalLimitC: clearable(policy.thermalLimitC.unwrap()),
}).refine((a) => Object.keys(a).length > 0, { message: 'give at least one of enabled, powerCapW, windowS, energyBudget, missionS, batteryReservePct, batteryCapacityWh, thermalLimitC' });

const LEVEL = /^[A-Za-z0-9_.-]+$/;
const streamArgs = z.strictObject({ stream: z.string().min(1).max(128).regex(LEVEL) });

const deployArgs = z.strictObject({
  /** Names the deployment in deploy/status and its chunk topic. */
  id: z.string().min(1).max(64).regex(LEVEL),
  /** sha256 (hex) and size of the whole bundle file. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(1),
  /** Download from here (HTTP Range resume) instead of receiving chunks on deploy/chunk/<id>. */
  url: z.string().max(2048).regex(/^https?:\/\/./, 'an http:// or https:// URL').optional(),
  /** Bytes per chunk on deploy/chunk/<id> (not with url). */
  chunkSize: z.number().int().min(1024).max(1 << 20).optional(),
  allowDowngrade: z.boolean().optional(),
}).refine((a) => (a.url === undefined) !== (a.chunkSize === undefined), { message: 'give either url or chunkSize' });
export type DeployArgs = z.infer<typeof deployArgs>;

export const COMMAND_ARGS = {
  'set-power-budget': budgetArgs,
  'set-placement': z.strictObject({ model: z.string().min(1).max(256).optional(), policy: z.enum(['analog', 'digital', 'auto']) }),
  'telemetry-snapshot': z.strictObject({}),
  'pause-stream': streamArgs,
  'resume-stream': streamArgs,
  deploy: deployArgs,
  rollback: z.strictObject({ model: z.string().min(1).max(64).regex(LEVEL).optional() }),
} as const;
export type CommandName = keyof typeof COMMAND_ARGS;
export const COMMAND_NAMES = Object.keys(COMMAND_ARGS) as CommandName[];

const nullsToUndefined = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null ? undefined : v]));

function optional<F>(f: F | undefined, what: string): F {
  if (f === undefined) throw new Error(`this device takes no ${what}`);
  return f;
}

async function dispatch(target: CommandTarget, name: CommandName, args: unknown): Promise<unknown> {
  switch (name) {
    case 'set-power-budget': return target.setPowerBudget(nullsToUndefined(args as Record<string, unknown>) as GovernorPolicyInput);
    case 'set-placement': return target.setPlacement(args as { model?: string; policy: PlacementPolicy });
    case 'telemetry-snapshot': return target.publishSnapshot();
    case 'pause-stream': return target.pauseStream((args as { stream: string }).stream);
    case 'resume-stream': return target.resumeStream((args as { stream: string }).stream);
    case 'deploy': return optional(target.deploy, 'deployments').call(target, args as DeployArgs);
    case 'rollback': return optional(target.rollback, 'rollbacks').call(target, args as { model?: string });
  }
}

// ---- building (the sender's side): build-command.ts, which the dashboard's page runs too ----

export { buildCommand, commandTopic, type BuildCommandOptions, type CommandBody } from './build-command.js';

// ---- replay memory ---------------------------------------------------------------------------

const replayFileSchema = z.strictObject({ v: z.literal(1), entries: z.array(z.tuple([z.string(), z.number()])) });

/**
 * (signer, nonce) pairs of accepted commands with their timestamps, kept while they are inside the
 * freshness window (older ones are refused as stale anyway), persisted with writeAtomic.
 */
export class ReplayMemory {
  #entries = new Map<string, number>();

  private constructor(private readonly storage: Storage, readonly file: string, readonly capacity: number) {}

  /** Loads the memory; a damaged file is a clear error (delete it only if no replay can be in flight). */
  static async open(storage: Storage, file = 'command-replay.json', capacity = 4096): Promise<ReplayMemory> {
    const m = new ReplayMemory(storage, file, capacity);
    const bytes = await storage.read(file, STATE_FILE_MAX_BYTES);
    if (bytes !== undefined) {
      const r = replayFileSchema.safeParse(parseJson(new TextDecoder().decode(bytes), `replay state '${file}'`));
      if (!r.success) throw new Error(`replay state '${file}' has the wrong shape`);
      m.#entries = new Map(r.data.entries);
    }
    return m;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Forgets entries with ts < oldest; then whether there is room for one more. */
  prune(oldest: number): boolean {
    for (const [k, ts] of this.#entries) if (ts < oldest) this.#entries.delete(k);
    return this.#entries.size < this.capacity;
  }

  /** Remembers and persists (fsync'd); on a write error it forgets the entry again and throws. */
  async record(key: string, ts: number): Promise<void> {
    this.#entries.set(key, ts);
    try {
      await this.storage.writeAtomic(this.file, new TextEncoder().encode(JSON.stringify({ v: 1, entries: [...this.#entries] })));
    } catch (e) {
      this.#entries.delete(key);
      throw e;
    }
  }
}

// ---- verification ----------------------------------------------------------------------------

export interface TrustLookup {
  trusted(publicKey: Uint8Array): { name: string; fingerprint: string } | undefined;
  /**
   * Re-reads the trusted keys. The verifier calls it before each signed command's trust check, so
   * `edgerun keys trust/untrust` take effect on a running device (revocation included).
   */
  reload?(): Promise<void>;
}

export interface VerifiedCommand {
  name: CommandName;
  args: unknown;
  nonce: string;
  ts: number;
  seq: number;
  signer: { name: string; fingerprint: string };
}

export type Verdict =
  | { ok: true; command: VerifiedCommand }
  | {
    ok: false; reason: RejectReason; detail: string; command?: string; signer?: string; nonce?: string;
    /** Signed by a trusted key (refused for what it says): reported from its own rejection-event budget. */
    authenticated?: boolean;
  };

export interface CommandVerifierOptions {
  /** This device: its id, fleet and topic prefix. */
  address: DeviceAddress;
  trust: TrustLookup;
  replay: ReplayMemory;
  /** Wall clock, ms since the epoch (tests inject one). */
  wallClock?: Clock;
  windowMs?: number;
  maxBytes?: number;
  /** ed25519 check (default tweetnacl's; apps pass drivers/crypto's native one). */
  verify?: SignatureVerifier;
}

const wall: Clock = { now: () => Date.now() };

/**
 * The public key a signed envelope names and the nonce its message claims, checking nothing
 * (undefined when there is no usable key): for refusing strangers before the costly signature check.
 */
function peekEnvelope(payload: Uint8Array, contentType: string | undefined): { key: Uint8Array; nonce?: string } | undefined {
  try {
    let key: unknown, inner: unknown;
    if (encodingOf(payload, contentType) === 'json') {
      const outer = JSON.parse(new TextDecoder().decode(payload)) as { key?: unknown; msg?: unknown } | null;
      key = typeof outer?.key === 'string' ? fromBase64(outer.key) : undefined;
      inner = typeof outer?.msg === 'string' ? JSON.parse(outer.msg) : undefined;
    } else {
      const outer = cborDecode(payload) as { key?: unknown; msg?: unknown } | null;
      key = outer?.key;
      inner = outer?.msg instanceof Uint8Array ? cborDecode(outer.msg) : undefined;
    }
    if (!(key instanceof Uint8Array) || key.length !== nacl.sign.publicKeyLength) return undefined;
    const nonce = bodySchema.shape.nonce.safeParse((inner as { body?: { nonce?: unknown } } | null)?.body?.nonce);
    return { key, ...(nonce.success ? { nonce: nonce.data } : {}) };
  } catch {
    return undefined; // decodeMessage reports what is wrong
  }
}

const bodySchema = z.object({
  name: z.string().min(1).max(64).regex(LEVEL),
  args: z.unknown().optional(),
  nonce: z.string().min(8).max(128).regex(/^[A-Za-z0-9_.:+/=-]+$/),
});

/** Checks commands; records accepted ones in the replay memory. One at a time (calls are serialised). */
export class CommandVerifier {
  readonly windowMs: number;
  readonly maxBytes: number;
  readonly #clock: Clock;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: CommandVerifierOptions) {
    this.windowMs = o.windowMs ?? 30_000;
    this.maxBytes = o.maxBytes ?? 16 * 1024;
    this.#clock = o.wallClock ?? wall;
  }

  /** `topic` is the full MQTT topic the payload arrived on; `contentType` its MQTT 5 content type, if any. */
  verify(topic: string, payload: Uint8Array, contentType?: string): Promise<Verdict> {
    const run = this.#chain.then(() => this.#verify(topic, payload, contentType));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #verify(topic: string, payload: Uint8Array, contentType: string | undefined): Promise<Verdict> {
    const reject = (reason: RejectReason, detail: string, extra: { command?: string; signer?: string; nonce?: string; authenticated?: boolean } = {}): Verdict => ({ ok: false, reason, detail, ...extra });
    const { address } = this.o;
    const parsed = parseTopic(address.prefix, topic);
    if (!parsed || parsed.kind !== 'cmd' || parsed.command === undefined) return reject('malformed', `not a command topic: ${topic}`);
    const topicName = parsed.command;
    if (payload.byteLength > this.maxBytes) return reject('oversized', `${payload.byteLength} bytes, more than the ${this.maxBytes} accepted`, { command: topicName });

    try {
      await this.o.trust.reload?.();
    } catch (e) {
      return reject('storage-error', `cannot read the trusted keys: ${(e as Error).message}`, { command: topicName });
    }
    // An ed25519 check in tweetnacl costs milliseconds: a key that is not trusted is refused before it.
    const claimed = peekEnvelope(payload, contentType);
    if (claimed && !this.o.trust.trusted(claimed.key)) {
      const fp = fingerprint(claimed.key);
      return reject('unknown-key', `signer ${fp} is not trusted`, { command: topicName, signer: fp, ...(claimed.nonce ? { nonce: claimed.nonce } : {}) });
    }

    let decoded;
    try {
      decoded = decodeMessage(payload, this.maxBytes, this.o.verify, contentType);
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      const reason = e.code === 'bad-signature' ? 'forged-signature' : e.code === 'too-large' ? 'oversized' : 'malformed';
      return reject(reason, e.message, { command: topicName });
    }
    const { message, signedBy } = decoded;
    // Echoed in the rejection so the sender can match it (a well-formed nonce only).
    const claimedNonce = bodySchema.shape.nonce.safeParse((message.body as { nonce?: unknown } | null)?.nonce);
    const echo = claimedNonce.success ? { nonce: claimedNonce.data } : {};
    if (!signedBy) return reject('unsigned', 'commands must be signed', { command: topicName, ...echo });
    const signerFp = fingerprint(signedBy);
    const trusted = this.o.trust.trusted(signedBy);
    if (!trusted) return reject('unknown-key', `signer ${signerFp} is not trusted`, { command: topicName, signer: signerFp, ...echo }); // (peeked above; kept for safety)
    const who = { command: topicName, signer: signerFp, authenticated: true };

    if (message.kind !== 'cmd') return reject('malformed', `message kind '${message.kind}', expected 'cmd'`, who);
    const body = bodySchema.safeParse(message.body);
    if (!body.success) return reject('malformed', `command body must be {name, args, nonce}: ${body.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`, who);
    const whose = { ...who, nonce: body.data.nonce };
    if (body.data.name !== topicName) return reject('malformed', `body names command '${body.data.name}' but it came on the topic of '${topicName}'`, whose);
    if (message.device !== address.device || parsed.device !== address.device || parsed.fleet !== address.fleet) {
      return reject('wrong-device', `addressed to '${message.device}' (topic ${parsed.fleet}/${parsed.device}), this is ${address.fleet}/${address.device}`, whose);
    }
    const now = this.#clock.now();
    const skew = message.ts - now;
    if (Math.abs(skew) > this.windowMs) {
      return reject('stale', `timestamp ${skew < 0 ? `${-skew} ms in the past` : `${skew} ms in the future`}, outside the ±${this.windowMs} ms window`, whose);
    }
    const key = `${toBase64(signedBy)}:${body.data.nonce}`;
    if (this.o.replay.has(key)) return reject('replayed', `nonce ${body.data.nonce} of signer ${signerFp} was already accepted`, whose);
    if (!this.o.replay.prune(now - this.windowMs)) return reject('rate-limited', `more than ${this.o.replay.capacity} commands within ${this.windowMs} ms`, whose);

    if (!Object.hasOwn(COMMAND_ARGS, topicName)) return reject('unknown-command', `no command '${topicName}'; commands: ${COMMAND_NAMES.join(', ')}`, whose);
    const name = topicName as CommandName;
    const args = COMMAND_ARGS[name].safeParse(body.data.args ?? {});
    if (!args.success) return reject('bad-args', args.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; '), whose);

    // Skew can be up to the window into the future: keep the entry as long as the command could still be fresh.
    try {
      await this.o.replay.record(key, Math.max(message.ts, now));
    } catch (e) {
      // Refuse what could not be recorded, naming the nonce so the sender hears of it at once.
      return reject('storage-error', `could not record the command: ${(e as Error).message}`, whose);
    }
    return { ok: true, command: { name, args: args.data, nonce: body.data.nonce, ts: message.ts, seq: message.seq, signer: { name: trusted.name, fingerprint: trusted.fingerprint } } };
  }
}

// ---- processing: verify, run, report -----------------------------------------------------------

export type CommandEvent =
  | { type: 'command-rejected'; reason: RejectReason; detail: string; topic: string; command?: string; signer?: string; nonce?: string; suppressed?: number }
  | { type: 'command-result'; command: CommandName; nonce: string; signer: { name: string; fingerprint: string }; ok: true; result?: unknown }
  | { type: 'command-result'; command: CommandName; nonce: string; signer: { name: string; fingerprint: string }; ok: false; error: string };

export interface CommandCounters {
  received: number;
  accepted: number;
  succeeded: number;
  failed: number;
  rejected: Record<RejectReason, number>;
  /** Rejections not reported as events (rate limit of rejection events). */
  suppressedEvents: number;
}

export interface CommandProcessorOptions extends CommandVerifierOptions {
  target: CommandTarget;
  /** Publishes an `events` body (the reporter). Errors are swallowed: a report must not stop commands. */
  report: (event: CommandEvent) => unknown;
  /**
   * Rejection events reported per window, the rest only counted (a flood must not flood the outbox);
   * default 20. Two budgets: unauthenticated commands (malformed, forged, unsigned, unknown key), and
   * commands signed by a trusted key (bad args, stale, replayed, ... — replays of a captured command
   * included), so a junk flood cannot hide the operator's own refused commands.
   */
  rejectEventsPerWindow?: number;
  /** Commands waiting to be checked at most (attach()); more are refused unread as rate-limited. Default 64. */
  maxQueued?: number;
}

/** Results are reported as given when they are small JSON values; otherwise summarised. */
function reportable(result: unknown): unknown {
  if (result === undefined) return undefined;
  try {
    const text = JSON.stringify(result);
    return text !== undefined && text.length <= 4096 ? JSON.parse(text) : { summary: `${typeof result} (${text?.length ?? 0} characters of JSON)` };
  } catch {
    return { summary: String(result) };
  }
}

export class CommandProcessor {
  readonly verifier: CommandVerifier;
  readonly #counters: CommandCounters = {
    received: 0, accepted: 0, succeeded: 0, failed: 0, suppressedEvents: 0,
    rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
  };
  readonly #clock: Clock;
  /** Rejection-event budgets: unauthenticated senders, and trusted signers (so junk cannot starve the operator's feedback). */
  readonly #budgets = { anonymous: { start: -Infinity, used: 0, suppressed: 0 }, authenticated: { start: -Infinity, used: 0, suppressed: 0 } };

  constructor(private readonly o: CommandProcessorOptions) {
    this.verifier = new CommandVerifier(o);
    this.#clock = o.wallClock ?? wall;
  }

  counters(): CommandCounters {
    return { ...this.#counters, rejected: { ...this.#counters.rejected } };
  }

  /** Verifies one incoming message (`contentType`: its MQTT 5 content type, if any); runs it if accepted. Never throws. */
  async handle(topic: string, payload: Uint8Array, contentType?: string): Promise<CommandEvent> {
    this.#counters.received++;
    let verdict: Verdict;
    try {
      verdict = await this.verifier.verify(topic, payload, contentType);
    } catch (e) {
      verdict = { ok: false, reason: 'storage-error', detail: `could not check the command: ${(e as Error).message}` };
    }
    if (!verdict.ok) return this.#rejected(topic, verdict);
    const c = verdict.command;
    this.#counters.accepted++;
    let event: CommandEvent;
    try {
      const result = reportable(await dispatch(this.o.target, c.name, c.args));
      this.#counters.succeeded++;
      event = { type: 'command-result', command: c.name, nonce: c.nonce, signer: c.signer, ok: true, ...(result === undefined ? {} : { result }) };
    } catch (e) {
      this.#counters.failed++;
      event = { type: 'command-result', command: c.name, nonce: c.nonce, signer: c.signer, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    this.#report(event);
    return event;
  }

  /** Counts and reports a command refused without checking it (e.g. a flood); `handle` does the rest. */
  refuse(topic: string, reason: RejectReason, detail: string): CommandEvent {
    this.#counters.received++;
    return this.#rejected(topic, { ok: false, reason, detail });
  }

  #rejected(topic: string, verdict: Extract<Verdict, { ok: false }>): CommandEvent {
    this.#counters.rejected[verdict.reason]++;
    const event: CommandEvent = { type: 'command-rejected', reason: verdict.reason, detail: verdict.detail, topic, ...(verdict.command ? { command: verdict.command } : {}), ...(verdict.signer ? { signer: verdict.signer } : {}), ...(verdict.nonce ? { nonce: verdict.nonce } : {}) };
    this.#reportRejection(event, verdict.authenticated === true);
    return event;
  }

  /**
   * Subscribes to this device's command topics (QoS 1) on an MQTT port and handles what arrives,
   * one at a time in arrival order. Returns a function that detaches.
   */
  attach(mqtt: MqttPort): () => Promise<void> {
    const filter = commandFilter(this.o.address);
    const prefix = `${filter.slice(0, -1)}`;
    let chain: Promise<unknown> = Promise.resolve();
    let queued = 0;
    const off = mqtt.onMessage((m) => {
      if (!m.topic.startsWith(prefix)) return;
      if (queued >= (this.o.maxQueued ?? 64)) {
        this.refuse(m.topic, 'rate-limited', `more than ${this.o.maxQueued ?? 64} commands waiting to be checked`);
        return;
      }
      queued++;
      chain = chain.then(() => this.handle(m.topic, m.payload, m.contentType)).finally(() => { queued--; });
    });
    const subscribed = mqtt.subscribe(filter, 1).catch(() => undefined); // re-subscribed by the port on reconnect
    return async () => {
      off();
      await subscribed;
      await mqtt.unsubscribe(filter).catch(() => undefined);
      await chain;
    };
  }

  #reportRejection(event: Extract<CommandEvent, { type: 'command-rejected' }>, authenticated: boolean): void {
    const b = this.#budgets[authenticated ? 'authenticated' : 'anonymous'];
    const now = this.#clock.now();
    if (now - b.start >= this.verifier.windowMs) {
      b.start = now;
      b.used = 0;
    }
    if (b.used >= (this.o.rejectEventsPerWindow ?? 20)) {
      this.#counters.suppressedEvents++;
      b.suppressed++;
      return;
    }
    b.used++;
    if (b.suppressed) {
      event.suppressed = b.suppressed;
      b.suppressed = 0;
    }
    this.#report(event);
  }

  #report(event: CommandEvent): void {
    try {
      const r = this.o.report(event);
      if (r instanceof Promise) r.catch(() => undefined);
    } catch {
      // reporting is best effort here; the counters keep the truth
    }
  }
}
