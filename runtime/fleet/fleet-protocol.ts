/**
 * The fleet benchmark over the broker: a coordinator hands a scenario to agents, each agent runs
 * its share of the fleet's devices on its machine and reports back. Topics (beside the devices'
 * own, runtime/telemetry/topics.ts; one level deeper, so no device filter `<fleet>/+/<kind>` or
 * `<fleet>/+/+` matches them):
 *
 *   <prefix>/<fleet>/$fleet/scenario/<run>   the scenario, signed by the coordinator (QoS 1)
 *   <prefix>/<fleet>/$agents/<agent>/status  retained: the agent's state and capacity; will: offline
 *   <prefix>/<fleet>/$agents/<agent>/report  QoS 1: started, progress (heartbeat), done, failed, refused
 *   <prefix>/<fleet>/$fleet/stop/<run>       QoS 1: the coordinator's end-of-run marker to its consumers (and
 *                                            to agents keeping a session's devices: they stop them)
 *   <prefix>/<fleet>/$fleet/abort/<run>      QoS 1: the coordinator was interrupted (Ctrl-C): agents end that run
 *                                            now and report what they have (a LoadGen part marked interrupted)
 *
 * Payloads are edgerun envelopes (runtime/telemetry/envelope.ts): the message's `device` is the
 * sender (coordinator or agent id). An agent with a trust store runs only scenarios signed by a
 * trusted key, fresh (ts within ± windowMs of its clock) and not seen before ((signer, nonce) in its
 * replay memory, the one commands use).
 */
import { z } from 'zod';
import type { Clock } from '../ports.js';
import type { ReplayMemory, TrustLookup } from '../telemetry/commands.js';
import { EnvelopeError, decodeMessage, encodeMessage, type SignatureVerifier, type SigningKey } from '../telemetry/envelope.js';
import { fingerprint } from '../telemetry/keys.js';
import type { DeviceSpec } from './fleet-file.js';
import { SCENARIOS, type ScenarioResult } from './loadgen.js';

const LEVEL = /^[A-Za-z0-9_.-]+$/;
const level = z.string().min(1).max(64).regex(LEVEL, 'letters, digits, "_", "." and "-" only');

function checkLevel(what: string, value: string): string {
  if (!LEVEL.test(value)) throw new Error(`invalid ${what} "${value}" for an MQTT topic: letters, digits, "_", "." and "-" only`);
  return value;
}

const root = (prefix: string, fleet: string): string => `${prefix}/${checkLevel('fleet', fleet)}`;
export const scenarioTopic = (prefix: string, fleet: string, run: string): string => `${root(prefix, fleet)}/$fleet/scenario/${checkLevel('run id', run)}`;
export const stopTopic = (prefix: string, fleet: string, run: string): string => `${root(prefix, fleet)}/$fleet/stop/${checkLevel('run id', run)}`;
export const scenarioFilter = (prefix: string, fleet: string): string => `${root(prefix, fleet)}/$fleet/scenario/+`;
export const stopFilter = (prefix: string, fleet: string): string => `${root(prefix, fleet)}/$fleet/stop/+`;
export const abortTopic = (prefix: string, fleet: string, run: string): string => `${root(prefix, fleet)}/$fleet/abort/${checkLevel('run id', run)}`;
export const abortFilter = (prefix: string, fleet: string): string => `${root(prefix, fleet)}/$fleet/abort/+`;
export const agentStatusTopic = (prefix: string, fleet: string, agent: string): string => `${root(prefix, fleet)}/$agents/${checkLevel('agent id', agent)}/status`;
export const agentReportTopic = (prefix: string, fleet: string, agent: string): string => `${root(prefix, fleet)}/$agents/${checkLevel('agent id', agent)}/report`;
export const agentsFilter = (prefix: string, fleet: string): string => `${root(prefix, fleet)}/$agents/+/+`;

/** The agent and what it says, from a topic under agentsFilter. */
export function parseAgentTopic(prefix: string, fleet: string, topic: string): { agent: string; kind: 'status' | 'report' } | undefined {
  const head = `${root(prefix, fleet)}/$agents/`;
  if (!topic.startsWith(head)) return undefined;
  const [agent, kind, ...rest] = topic.slice(head.length).split('/');
  if (rest.length || !agent || !LEVEL.test(agent) || (kind !== 'status' && kind !== 'report')) return undefined;
  return { agent, kind };
}

/** A device of the fleet as the scenario carries it: the fleet file's DeviceSpec, checked field by field (an agent builds what it says). */
const deviceSpecSchema = z.strictObject({
  id: level,
  group: level,
  profile: z.string().min(1).max(1024),
  seed: z.number().int().min(0).max(0xffffffff),
  ageS: z.number().min(0).finite(),
  models: z.array(z.string().min(1).max(1024)).min(1).max(16),
  rateHz: z.number().positive().max(1000),
  sign: z.boolean(),
  battery: z.strictObject({ capacityWh: z.number().positive().max(1e6), initialPct: z.number().min(0).max(100), idleW: z.number().min(0).max(1e4) }).optional(),
  serviceTime: z.strictObject({ distribution: z.enum(['fixed', 'exponential']), meanMs: z.number().positive().max(60_000) }).optional(),
}) satisfies z.ZodType<DeviceSpec>;
export type ScenarioDevice = DeviceSpec;

const shareSchema = z.strictObject({ agent: level, from: z.number().int().min(0), to: z.number().int().min(0) });
export type Share = z.infer<typeof shareSchema>;

/** A LoadGen scenario for the agents' load generators: each runs it over its share, at its share of the rate and of the minimum counts (loadShare). */
const loadSpecSchema = z.strictObject({
  scenario: z.enum(SCENARIOS),
  mode: z.enum(['performance', 'accuracy']),
  settings: z.strictObject({
    minDurationMs: z.number().min(0).max(86_400_000),
    minQueryCount: z.number().int().min(1).max(100_000_000),
    samplesPerQuery: z.number().int().min(1).max(100_000_000),
    latencyPercentile: z.union([z.literal(90), z.literal(99)]),
    targetQps: z.number().positive().max(1e7).optional(),
    latencyBoundMs: z.number().positive().max(86_400_000).optional(),
    expectedQps: z.number().positive().max(1e9).optional(),
  }),
  seed: z.number().int().min(0).max(0xffffffff),
  /** Accuracy mode: the part of the sample library this load generator covers, as fractions of it (agents: their share). */
  librarySlice: z.strictObject({ from: z.number().min(0).max(1), to: z.number().min(0).max(1) }).optional(),
});
export type AgentLoadSpec = z.infer<typeof loadSpecSchema>;

/**
 * An agent's part of a scenario, for its devices [from, to) of `total`: the rate and the minimum
 * counts in proportion, its own seed, and in accuracy mode the same slice of the sample library
 * (the agents together cover it once).
 */
export function loadShare(load: AgentLoadSpec, share: { from: number; to: number; total: number }, agentIndex: number): AgentLoadSpec {
  const s = load.settings;
  const fraction = (share.to - share.from) / share.total;
  const min = Math.max(1, Math.ceil(s.minQueryCount * fraction));
  return {
    ...load, seed: (load.seed + agentIndex * 7919) >>> 0, librarySlice: { from: share.from / share.total, to: share.to / share.total },
    settings: {
      ...s, minQueryCount: min, ...(load.scenario === 'Offline' ? { samplesPerQuery: min } : {}),
      ...(s.targetQps !== undefined ? { targetQps: s.targetQps * fraction } : {}), ...(s.expectedQps !== undefined ? { expectedQps: s.expectedQps * fraction } : {}),
    },
  };
}

const scenarioSchema = z.strictObject({
  run: level,
  /** Random per message: with the signer, what the replay memory remembers. */
  nonce: z.string().min(8).max(128).regex(/^[A-Za-z0-9_.:+/=-]+$/),
  devices: z.array(deviceSpecSchema).min(1).max(100_000),
  /** Contiguous ranges [from, to) of `devices`, one per agent. */
  shares: z.array(shareSchema).min(1),
  /** How long each agent runs its devices once they are all up, seconds. */
  durationS: z.number().positive().max(86_400),
  /** An agent whose devices are not all up this long after the scenario fails its run, seconds. */
  startTimeoutS: z.number().positive().max(86_400),
  /** A LoadGen scenario each agent's load generator issues to its devices (they do not pace themselves); durationS is then unused. */
  loadgen: loadSpecSchema.optional(),
  /**
   * Several runs over the same devices (a Server search: one run per rate): the agent keeps its
   * share's devices running after a run of the session, for the next one, until the session's stop
   * marker (stopTopic(<session id>)), a scenario of another session, or `keepS` without one.
   */
  session: z.strictObject({ id: level, keepS: z.number().positive().max(86_400) }).optional(),
}).superRefine((s, ctx) => {
  let next = 0;
  for (const sh of s.shares) {
    if (sh.from !== next || sh.to < sh.from) ctx.addIssue({ code: 'custom', message: `shares must cover the devices in order without overlap: ${sh.agent} [${sh.from}, ${sh.to})` });
    next = sh.to;
  }
  if (next !== s.devices.length) ctx.addIssue({ code: 'custom', message: `shares cover ${next} of ${s.devices.length} devices` });
  if (new Set(s.shares.map((sh) => sh.agent)).size !== s.shares.length) ctx.addIssue({ code: 'custom', message: 'an agent holds two shares' });
  if (new Set(s.devices.map((d) => d.id)).size !== s.devices.length) ctx.addIssue({ code: 'custom', message: 'two devices share an id' });
});
export type Scenario = z.infer<typeof scenarioSchema>;

const agentStatusSchema = z.strictObject({
  state: z.enum(['idle', 'running', 'offline']),
  /** What the agent offers: worker threads (the coordinator splits the fleet in proportion). */
  capacity: z.strictObject({ workers: z.number().int().min(1).max(1024), cpus: z.number().int().min(1).max(4096) }).optional(),
  run: level.optional(),
  /** The seq this connection's will (state offline) carries: a coordinator checking replays accepts that one lower seq. */
  willSeq: z.number().int().min(0).optional(),
});
export type AgentStatus = z.infer<typeof agentStatusSchema>;

const count = z.number().int().min(0);
/** What an agent's load generator measured over its share: its scenario result (with the latency histogram, to be merged), the queries' accounting, its thread's busy share. */
const agentLoadSchema = z.strictObject({
  result: z.looseObject({
    scenario: z.enum(SCENARIOS), mode: z.enum(['performance', 'accuracy']), queries: count, samples: count, durationMs: z.number().min(0),
    percentileMs: z.number().min(0), samplesPerSecond: z.number().min(0), valid: z.boolean(), invalidBecause: z.array(z.string().max(500)).max(20),
    targetQps: z.number().min(0).optional(), accuracy: z.number().min(0).max(1).optional(),
    histogram: z.strictObject({ hdr: z.string().max(1 << 20), sumUs: z.number().min(0) }),
  }).transform((r) => r as unknown as ScenarioResult).optional(),
  queries: z.strictObject({ issued: count, samples: count, completed: count, lost: count, duplicated: count, unknown: count }),
  /** `results` messages the agent's consumer received (its devices' only: each result reaches one agent). */
  received: count,
  busyShare: z.number().min(0).max(1),
});
export type AgentLoadReport = z.infer<typeof agentLoadSchema>;

const agentReportSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('started'), run: level, devices: z.array(level) }),
  z.strictObject({ type: z.literal('progress'), run: level, online: z.number().int().min(0), elapsedS: z.number().min(0) }),
  /** `produced`: results each device had accepted into its outbox when it stopped (all of them drained to the broker). */
  z.strictObject({ type: z.literal('done'), run: level, devices: z.array(level), produced: z.record(z.string(), z.number().int().min(0)).optional(), loadgen: agentLoadSchema.optional() }),
  z.strictObject({ type: z.literal('failed'), run: level, error: z.string().max(2000) }),
  z.strictObject({ type: z.literal('refused'), run: z.string().max(200).optional(), reason: z.string(), detail: z.string().max(2000) }),
]);
export type AgentReport = z.infer<typeof agentReportSchema>;

/**
 * Splits the devices into contiguous shares in proportion to each agent's workers (largest
 * remainder), agents in id order: the same agents and devices always give the same shares.
 */
export function splitFleet(deviceCount: number, agents: readonly { id: string; workers: number }[]): Share[] {
  if (!agents.length) throw new Error('no agent to run the fleet');
  const sorted = [...agents].sort((a, b) => a.id.localeCompare(b.id));
  const total = sorted.reduce((s, a) => s + a.workers, 0);
  const exact = sorted.map((a) => (deviceCount * a.workers) / total);
  const counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0, left = deviceCount - counts.reduce((s, c) => s + c, 0); k < left; k++) counts[order[k]![1]]!++;
  let from = 0;
  return sorted.map((a, i) => {
    const share = { agent: a.id, from, to: from + counts[i]! };
    from = share.to;
    return share;
  });
}

/** The devices of one agent's share (empty when the scenario gives it none). */
export function shareOf(s: Scenario, agent: string): ScenarioDevice[] {
  const sh = s.shares.find((x) => x.agent === agent);
  return sh ? s.devices.slice(sh.from, sh.to) : [];
}

/** The coordinator's signed scenario message (`sender` names the coordinator in the envelope). */
export function encodeScenario(s: Scenario, o: { sender: string; signer?: SigningKey; ts?: number }): Uint8Array {
  const ts = o.ts ?? Date.now();
  return encodeMessage({ device: o.sender, seq: ts, ts, kind: 'fleet-scenario', body: scenarioSchema.parse(s) }, { ...(o.signer ? { signer: o.signer } : {}) });
}

export type ScenarioRefusal = 'oversized' | 'malformed' | 'forged-signature' | 'unsigned' | 'unknown-key' | 'stale' | 'replayed' | 'storage-error';

export type ScenarioVerdict =
  | { ok: true; scenario: Scenario; signer?: { name: string; fingerprint: string } }
  | { ok: false; reason: ScenarioRefusal; detail: string; run?: string };

export interface ScenarioCheckOptions {
  /** With a trust store: only scenarios signed by one of its keys, fresh and not replayed. */
  trust?: TrustLookup;
  /** Needed with `trust`. */
  replay?: ReplayMemory;
  /** Wall clock, ms since the epoch. */
  clock: Clock;
  windowMs?: number;
  maxBytes?: number;
  verify?: SignatureVerifier;
}

/** Checks a scenario message; records an accepted signed one in the replay memory. */
export async function checkScenario(payload: Uint8Array, o: ScenarioCheckOptions): Promise<ScenarioVerdict> {
  const maxBytes = o.maxBytes ?? 16 << 20;
  let decoded;
  try {
    decoded = decodeMessage(payload, maxBytes, o.verify);
  } catch (e) {
    if (!(e instanceof EnvelopeError)) throw e;
    return { ok: false, reason: e.code === 'bad-signature' ? 'forged-signature' : e.code === 'too-large' ? 'oversized' : 'malformed', detail: e.message };
  }
  const m = decoded.message;
  if (m.kind !== 'fleet-scenario') return { ok: false, reason: 'malformed', detail: `a '${m.kind}' message, not a fleet scenario` };
  const parsed = scenarioSchema.safeParse(m.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: 'malformed', detail: `scenario ${issue.path.join('.') || '(body)'}: ${issue.message}` };
  }
  const s = parsed.data;
  if (!o.trust) return { ok: true, scenario: s };
  if (!decoded.signedBy) return { ok: false, reason: 'unsigned', detail: 'the scenario is not signed and this agent has a trust store', run: s.run };
  try {
    await o.trust.reload?.();
  } catch (e) {
    return { ok: false, reason: 'storage-error', detail: `cannot read the trusted keys: ${(e as Error).message}`, run: s.run };
  }
  const signer = o.trust.trusted(decoded.signedBy);
  if (!signer) return { ok: false, reason: 'unknown-key', detail: `signer ${fingerprint(decoded.signedBy)} is not trusted`, run: s.run };
  const windowMs = o.windowMs ?? 120_000;
  const now = o.clock.now();
  if (Math.abs(now - m.ts) > windowMs) return { ok: false, reason: 'stale', detail: `sent ${Math.round((now - m.ts) / 1000)} s from this agent's clock (window ± ${windowMs / 1000} s)`, run: s.run };
  const replay = o.replay;
  if (!replay) throw new Error('checkScenario: a trust store needs a replay memory');
  const key = `${signer.fingerprint}:${s.nonce}`;
  if (replay.has(key)) return { ok: false, reason: 'replayed', detail: `scenario ${s.run} (nonce ${s.nonce}) was already accepted`, run: s.run };
  replay.prune(now - windowMs);
  try {
    await replay.record(key, m.ts);
  } catch (e) {
    return { ok: false, reason: 'storage-error', detail: `cannot record the scenario: ${(e as Error).message}`, run: s.run };
  }
  return { ok: true, scenario: s, signer: { name: signer.name, fingerprint: signer.fingerprint } };
}

/** An agent's status or report, signed when the agent has a key. */
export function encodeFleetMessage(sender: string, seq: number, kind: 'agent-status' | 'agent-report', body: AgentStatus | AgentReport, signer?: SigningKey): Uint8Array {
  return encodeMessage({ device: sender, seq, ts: Date.now(), kind, body }, { ...(signer ? { signer } : {}) });
}

export type AgentMessage = ({ kind: 'status'; body: AgentStatus } | { kind: 'report'; body: AgentReport }) & { seq: number; signedBy?: Uint8Array };

/**
 * Decodes an agent's status or report; undefined for anything else (foreign or malformed publishers
 * are ignored); `forged` when it carries a signature that does not verify.
 */
export function decodeAgentMessage(payload: Uint8Array, kind: 'status' | 'report', verify?: SignatureVerifier): AgentMessage | 'forged' | undefined {
  try {
    const { message, signedBy } = decodeMessage(payload, 1 << 20, verify);
    const signed = signedBy ? { signedBy } : {};
    if (kind === 'status' && message.kind === 'agent-status') {
      const r = agentStatusSchema.safeParse(message.body);
      return r.success ? { kind, body: r.data, seq: message.seq, ...signed } : undefined;
    }
    if (kind === 'report' && message.kind === 'agent-report') {
      const r = agentReportSchema.safeParse(message.body);
      return r.success ? { kind, body: r.data, seq: message.seq, ...signed } : undefined;
    }
  } catch (e) {
    if (!(e instanceof EnvelopeError)) throw e;
    if (e.code === 'bad-signature') return 'forged';
  }
  return undefined;
}
