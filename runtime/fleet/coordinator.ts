/**
 * The coordinator of a fleet benchmark over the broker (fleet-protocol.ts): it follows the agents'
 * retained statuses, waits for enough idle ones, splits the fleet among them, publishes the signed
 * scenario and follows each agent's reports until every share is done, failed or lost. An agent
 * whose status turns "offline" (its will: killed, unplugged) before it reported done is lost, and
 * so are its devices' unfinished results; the others' figures stand on their own.
 */
import type { Clock } from '../ports.js';
import type { MqttPort } from '../telemetry/mqtt-port.js';
import { newNonce } from '../telemetry/build-command.js';
import type { SignatureVerifier, SigningKey } from '../telemetry/envelope.js';
import type { TrustLookup } from '../telemetry/commands.js';
import { fingerprint } from '../telemetry/keys.js';
import {
  abortTopic, agentsFilter, decodeAgentMessage, encodeScenario, parseAgentTopic, scenarioTopic, splitFleet,
  type AgentLoadReport, type AgentMessage, type AgentLoadSpec, type AgentReport, type AgentStatus, type Scenario, type ScenarioDevice,
} from './fleet-protocol.js';
import type { Timeline } from './timeline.js';

export interface AgentOutcome {
  agent: string;
  /** The devices the scenario gave it. */
  devices: string[];
  state: 'done' | 'failed' | 'lost' | 'refused';
  detail?: string;
  /** Results each device had accepted when it stopped (from the agent's done report). */
  produced?: Record<string, number>;
  /** A LoadGen scenario's part the agent ran (from its done report). */
  loadgen?: AgentLoadReport;
}

export interface CoordinatorOptions {
  mqtt: MqttPort;
  prefix: string;
  fleet: string;
  /** Names the coordinator as the scenario's sender. */
  id: string;
  signer?: SigningKey;
  timeline: Timeline;
  /** Wall clock for the scenario's timestamp. */
  wallClock?: Clock;
  log: (line: string) => void;
  /** Called on every agent report of the run under way. */
  onReport?: (agent: string, report: AgentReport) => void;
  /**
   * With a trust store: only agents whose statuses and reports are signed by one of its keys count;
   * unsigned, forged, untrusted and replayed (seq not above the agent's last) messages are refused.
   */
  trust?: TrustLookup;
  verify?: SignatureVerifier;
}

interface ActiveRun {
  scenario: Scenario;
  outcomes: Map<string, AgentOutcome>;
  pending: Set<string>;
  /** When each agent was last heard from (timeline ms). */
  heard: Map<string, number>;
  settle: () => void;
}

export class FleetCoordinator {
  readonly #agents = new Map<string, AgentStatus>();
  /** Per agent, the highest seq accepted and the will seq its last status announced (replay check). */
  readonly #seen = new Map<string, { seq: number; willSeq?: number }>();
  /** Refusals already logged, once per agent and reason. */
  readonly #refusedLogged = new Set<string>();
  #changed: (() => void)[] = [];
  #active: ActiveRun | undefined;
  #aborted = false;

  constructor(private readonly o: CoordinatorOptions) {}

  /** Subscribes to the agents' statuses and reports (the MQTT client must be connecting). */
  async start(): Promise<void> {
    const { mqtt, prefix, fleet } = this.o;
    mqtt.onMessage((m) => {
      const where = parseAgentTopic(prefix, fleet, m.topic);
      if (!where) return;
      const msg = decodeAgentMessage(m.payload, where.kind, this.o.verify);
      if (msg === undefined) return;
      if (msg === 'forged') return this.#refuse(where.agent, 'forged signature');
      if (!this.#accept(where.agent, msg)) return;
      if (msg.kind === 'status') this.#status(where.agent, msg.body);
      else if (msg.kind === 'report' && !m.retain) this.#report(where.agent, msg.body);
    });
    await mqtt.subscribe(agentsFilter(prefix, fleet), 1);
  }

  /** Resolves with `n` idle agents (the first by id) once there are that many; rejects after `timeoutMs`. */
  waitForAgents(n: number, timeoutMs: number): Promise<{ id: string; workers: number }[]> {
    const { timeline } = this.o;
    const deadline = timeline.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      let done = false;
      let cancel = (): void => undefined;
      const check = (): void => {
        if (done) return;
        const idle = [...this.#agents].filter(([, s]) => s.state === 'idle').sort(([a], [b]) => a.localeCompare(b));
        if (idle.length >= n) {
          done = true;
          cancel();
          resolve(idle.slice(0, n).map(([id, s]) => ({ id, workers: s.capacity?.workers ?? 1 })));
        } else if (timeline.now() >= deadline) {
          done = true;
          reject(new Error(`${idle.length} of ${n} agent(s) ready after ${Math.round(timeoutMs / 1000)} s${idle.length ? ` (${idle.map(([id]) => id).join(', ')})` : ''}`));
        } else {
          this.#changed.push(check);
        }
      };
      cancel = timeline.at(deadline, check);
      check();
    });
  }

  /**
   * Splits `devices` among `agents`, publishes the scenario and resolves with each agent's outcome
   * once all are settled. An agent is lost when its will says offline, or when it is silent for
   * `graceS` (agents send a heartbeat every few seconds while they start, run and stop their devices).
   */
  async run(o: { run: string; devices: ScenarioDevice[]; agents: { id: string; workers: number }[]; durationS: number; startTimeoutS: number; graceS: number; loadgen?: AgentLoadSpec; session?: Scenario['session'] }): Promise<{ scenario: Scenario; outcomes: AgentOutcome[] }> {
    if (this.#active) throw new Error(`run ${this.#active.scenario.run} is under way`);
    const { mqtt, prefix, fleet, timeline } = this.o;
    const shares = splitFleet(o.devices.length, o.agents).filter((s) => s.to > s.from);
    const scenario: Scenario = { run: o.run, nonce: newNonce(), devices: o.devices, shares, durationS: o.durationS, startTimeoutS: o.startTimeoutS, ...(o.loadgen ? { loadgen: o.loadgen } : {}), ...(o.session ? { session: o.session } : {}) };
    const outcomes = new Map(shares.map((s) => [s.agent, { agent: s.agent, devices: o.devices.slice(s.from, s.to).map((d) => d.id), state: 'lost' as AgentOutcome['state'] }]));
    const settled = new Promise<void>((resolve) => {
      this.#active = { scenario, outcomes, pending: new Set(outcomes.keys()), heard: new Map([...outcomes.keys()].map((a) => [a, timeline.now()])), settle: resolve };
    });
    const payload = encodeScenario(scenario, { sender: this.o.id, ...(this.o.signer ? { signer: this.o.signer } : {}), ts: (this.o.wallClock ?? { now: () => Date.now() }).now() });
    await mqtt.publish(scenarioTopic(prefix, fleet, o.run), payload, { qos: 1 });
    this.o.log(`run ${o.run}: ${o.devices.length} device(s) to ${shares.map((s) => `${s.agent} [${s.from}, ${s.to})`).join(', ')}`);
    if (this.#aborted) await this.abort();
    const active = this.#active!;
    let cancel = (): void => undefined;
    const watch = (): void => {
      for (const agent of [...active.pending]) {
        if (timeline.now() - active.heard.get(agent)! > o.graceS * 1000) this.#settle(active, agent, { state: 'lost', detail: `silent for ${o.graceS} s` });
      }
      if (active.pending.size) cancel = timeline.at(timeline.now() + 1000, watch);
    };
    cancel = timeline.at(timeline.now() + 1000, watch);
    await settled;
    cancel();
    this.#active = undefined;
    return { scenario, outcomes: [...outcomes.values()] };
  }

  /** Without a trust store every well-formed message; with one, trusted signatures only, each seq once and in order. */
  #accept(agent: string, msg: AgentMessage): boolean {
    const trust = this.o.trust;
    const refuse = (reason: string): false => { this.#refuse(agent, reason); return false; };
    if (!trust) return true;
    if (!msg.signedBy) return refuse('unsigned, and this coordinator takes signed agents only');
    const signer = trust.trusted(msg.signedBy);
    if (!signer) return refuse(`signed by ${fingerprint(msg.signedBy)}, not a trusted key`);
    const seen = this.#seen.get(agent);
    const isWill = msg.kind === 'status' && msg.body.state === 'offline' && msg.seq === seen?.willSeq;
    if (seen && msg.seq <= seen.seq && !isWill) return refuse(`replayed: seq ${msg.seq} not above ${seen.seq}`);
    const next = { seq: Math.max(msg.seq, seen?.seq ?? -1), ...(msg.kind === 'status' && msg.body.willSeq !== undefined ? { willSeq: msg.body.willSeq } : seen?.willSeq !== undefined && !isWill ? { willSeq: seen.willSeq } : {}) };
    this.#seen.set(agent, next);
    return true;
  }

  #refuse(agent: string, reason: string): void {
    if (this.#refusedLogged.has(`${agent}\n${reason}`)) return;
    this.#refusedLogged.add(`${agent}\n${reason}`);
    this.o.log(`agent ${agent}: message refused (${reason})`);
  }

  /** Asks the agents to end the run under way now (Ctrl-C): each reports what it has, and run() settles as usual; a run started later is ended at once. */
  async abort(): Promise<void> {
    this.#aborted = true;
    const a = this.#active;
    if (!a) return;
    this.o.log(`run ${a.scenario.run}: asking the agents to end it now`);
    await this.o.mqtt.publish(abortTopic(this.o.prefix, this.o.fleet, a.scenario.run), new TextEncoder().encode(a.scenario.run), { qos: 1 });
  }

  #status(agent: string, s: AgentStatus): void {
    this.#agents.set(agent, s);
    const a = this.#active;
    if (a?.pending.has(agent) && s.state === 'offline') this.#settle(a, agent, { state: 'lost', detail: 'went offline during the run (its will)' });
    const waiting = this.#changed;
    this.#changed = [];
    for (const f of waiting) f();
  }

  #report(agent: string, r: AgentReport): void {
    const a = this.#active;
    // A refusal without a run id is of some message that was not a readable scenario: not ours to settle on.
    if (!a || r.run !== a.scenario.run) return;
    if (a.heard.has(agent)) a.heard.set(agent, this.o.timeline.now());
    this.o.onReport?.(agent, r);
    if (!a.pending.has(agent)) return;
    if (r.type === 'done') this.#settle(a, agent, { state: 'done', ...(r.produced ? { produced: r.produced } : {}), ...(r.loadgen ? { loadgen: r.loadgen } : {}) });
    else if (r.type === 'failed') this.#settle(a, agent, { state: 'failed', detail: r.error });
    else if (r.type === 'refused') this.#settle(a, agent, { state: 'refused', detail: `${r.reason}: ${r.detail}` });
  }

  #settle(a: ActiveRun, agent: string, outcome: Partial<AgentOutcome>): void {
    if (!a.pending.delete(agent)) return;
    const o = a.outcomes.get(agent)!;
    Object.assign(o, outcome);
    this.o.log(`run ${a.scenario.run}: agent ${agent} ${o.state}${o.detail ? ` (${o.detail})` : ''}`);
    if (!a.pending.size) a.settle();
  }
}
