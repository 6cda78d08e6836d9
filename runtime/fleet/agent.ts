/**
 * A fleet agent: one machine's part of a fleet benchmark (fleet-protocol.ts). It announces itself
 * (retained status with its capacity, will "offline"), waits for scenarios, checks each (signature,
 * freshness, replay when it has a trust store), runs its share of the devices through the fleet
 * host for the scenario's duration on its own timeline, and reports started, progress, done or
 * failed — or why it refused a scenario. The devices' results go to the broker by themselves; the
 * agent never measures them (the coordinator's consumers do). A scenario with `loadgen` is a LoadGen
 * scenario: the agent's load generator issues its share of it to its devices (which then do not
 * pace themselves) and reports the result with its done.
 */
import type { MqttPort } from '../telemetry/mqtt-port.js';
import {
  agentReportTopic, agentStatusTopic, checkScenario, encodeFleetMessage, loadShare, scenarioFilter, shareOf, stopFilter, stopTopic, abortFilter, abortTopic,
  type AgentLoadReport, type AgentLoadSpec, type AgentReport, type AgentStatus, type Scenario, type ScenarioCheckOptions, type ScenarioDevice,
} from './fleet-protocol.js';
import type { SigningKey } from '../telemetry/envelope.js';
import type { Timeline } from './timeline.js';

/** The devices of a share, starting then running (apps/ wire the fleet host behind it). */
export interface RunningShare {
  /** Resolves once every device is up; rejects when one cannot start. */
  readonly started: Promise<void>;
  /** Devices connected to the broker now. */
  online(): number;
  /**
   * Stops the devices (outboxes drained, bounded); the results each had accepted, when known. With
   * `clean` their state is removed once every outbox is empty; without (a failed run) it is kept for diagnosis.
   */
  stop(o: { clean: boolean }): Promise<{ produced?: Record<string, number> }>;
  /** Scenario mode (started with queries): a load generator apart from the devices issues them this scenario (run `run`) and judges it from their results on the broker; `signal` ends it early with what it measured. */
  runLoad(load: AgentLoadSpec, run: string, signal: AbortSignal): Promise<AgentLoadReport>;
}

export interface ShareHost {
  /** Starts these devices (at once: `started` says when they are all up); with `queries` they run only a load generator's queries. `run` names their state (a run's, or a session's). */
  start(devices: ScenarioDevice[], run: string, o: { queries: boolean }): RunningShare;
}

/** A session's devices kept running between its runs. */
interface KeptShare {
  session: string;
  /** The devices' ids, in order: a run of the session over other devices starts its own. */
  devices: string;
  share: RunningShare;
  cancelTimer: () => void;
}

export interface FleetAgentOptions {
  mqtt: MqttPort;
  prefix: string;
  fleet: string;
  id: string;
  capacity: NonNullable<AgentStatus['capacity']>;
  host: ShareHost;
  check: ScenarioCheckOptions;
  timeline: Timeline;
  progressIntervalMs?: number;
  log: (line: string) => void;
  /** Signs the agent's statuses and reports (a coordinator with a trust store takes only signed agents). */
  signer?: SigningKey;
}

export class FleetAgent {
  /** Monotonic across restarts of the agent (wall-clock based). */
  #seq = Date.now();
  #running: string | undefined;
  #current: Promise<void> = Promise.resolve();
  #stopping = false;
  /** Ends the run's wait at once (stop()). */
  #interrupt: (() => void) | undefined;
  #kept: KeptShare | undefined;
  /** Ends the run under way early (the coordinator's abort). */
  #abort: AbortController | undefined;
  /** The last runs the coordinator aborted. */
  readonly #abortedRuns: string[] = [];
  /** The seq this connection's will carries (announced in every status, so a coordinator checking replays takes it). */
  #willSeq = 0;

  constructor(private readonly o: FleetAgentOptions) {}

  /** Connects, announces itself and takes scenarios until stop(). */
  start(): void {
    const { mqtt, prefix, fleet, id } = this.o;
    mqtt.setWill(() => {
      this.#willSeq = this.#seq++;
      return { topic: agentStatusTopic(prefix, fleet, id), payload: encodeFleetMessage(id, this.#willSeq, 'agent-status', { state: 'offline' }, this.o.signer), qos: 1, retain: true };
    });
    mqtt.onConnect(() => {
      void Promise.all([mqtt.subscribe(scenarioFilter(prefix, fleet), 1), mqtt.subscribe(stopFilter(prefix, fleet), 1), mqtt.subscribe(abortFilter(prefix, fleet), 1)])
        .then(() => this.#status(this.#running ? { state: 'running', run: this.#running } : { state: 'idle' }))
        .catch((e: Error) => this.o.log(`cannot subscribe to scenarios: ${e.message}`));
    });
    const stopHead = stopTopic(prefix, fleet, 'x').slice(0, -1);
    const abortHead = abortTopic(prefix, fleet, 'x').slice(0, -1);
    mqtt.onMessage((m) => {
      if (m.retain || this.#stopping) return; // a retained scenario is an old one: never run it again
      if (m.topic.startsWith(abortHead)) {
        // The coordinator was interrupted: the run under way ends now, with what it measured.
        const run = m.topic.slice(abortHead.length);
        // Kept a while: an abort can overtake its scenario, still being checked.
        this.#abortedRuns.push(run);
        if (this.#abortedRuns.length > 16) this.#abortedRuns.shift();
        if (this.#running === run) this.#abort?.abort();
        return;
      }
      if (m.topic.startsWith(stopHead)) {
        // The end of a session: its devices kept for the next run stop.
        if (this.#kept?.session === m.topic.slice(stopHead.length)) void this.#release('its session ended');
        return;
      }
      void this.#offer(m.payload).catch((e: Error) => this.o.log(`scenario not handled: ${e.message}`));
    });
    mqtt.connect();
  }

  /** Finishes the run under way (its devices stopped), says offline, disconnects. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#interrupt?.();
    await this.#current;
    await this.#release('the agent stops');
    await this.#status({ state: 'offline' }).catch(() => undefined);
    await this.o.mqtt.end();
  }

  async #offer(payload: Uint8Array): Promise<void> {
    const verdict = await checkScenario(payload, this.o.check);
    if (!verdict.ok) {
      this.o.log(`scenario${verdict.run ? ` ${verdict.run}` : ''} refused: ${verdict.reason}: ${verdict.detail}`);
      await this.#report({ type: 'refused', ...(verdict.run ? { run: verdict.run } : {}), reason: verdict.reason, detail: verdict.detail });
      return;
    }
    const s = verdict.scenario;
    const devices = shareOf(s, this.o.id);
    if (this.#running) {
      if (devices.length) await this.#report({ type: 'failed', run: s.run, error: `agent ${this.o.id} is busy with run ${this.#running}` });
      return;
    }
    if (this.#kept && (this.#kept.session !== s.session?.id || this.#kept.devices !== devices.map((d) => d.id).join())) await this.#release('a scenario of another session or share came');
    if (!devices.length) return;
    this.#running = s.run;
    this.#current = this.#run(s, devices);
    await this.#current;
  }

  async #run(s: Scenario, devices: ScenarioDevice[]): Promise<void> {
    const { timeline, log } = this.o;
    await this.#status({ state: 'running', run: s.run });
    // A session's devices still running from its previous run serve this one.
    const kept = this.#kept;
    this.#kept = undefined;
    kept?.cancelTimer();
    const abort = (this.#abort = new AbortController());
    if (this.#abortedRuns.includes(s.run)) abort.abort();
    let share: RunningShare | undefined = kept?.share;
    log(`run ${s.run}: ${share ? 'the session\'s' : 'starting'} ${devices.length} device(s)${s.loadgen ? ` for ${s.loadgen.scenario}` : ` for ${s.durationS} s`}`);
    let t0: number | undefined;
    // A heartbeat from the start on (devices starting, running, draining): the coordinator takes a silent agent for lost.
    const every = this.o.progressIntervalMs ?? 5000;
    let cancelBeat = (): void => undefined;
    const beat = (): void => {
      void this.#report({ type: 'progress', run: s.run, online: share?.online() ?? 0, elapsedS: t0 === undefined ? 0 : Math.round((timeline.now() - t0) / 100) / 10 }).catch(() => undefined);
      cancelBeat = timeline.at(timeline.now() + every, beat);
    };
    cancelBeat = timeline.at(timeline.now() + every, beat);
    try {
      if (!share) {
        share = this.o.host.start(devices, s.session?.id ?? s.run, { queries: s.loadgen !== undefined });
        // Devices that cannot reach the broker would keep an agent starting for ever: bounded by the scenario.
        let cancelStart = (): void => undefined;
        const timedOut = new Promise<never>((_, reject) => {
          cancelStart = timeline.at(timeline.now() + s.startTimeoutS * 1000, () => reject(new Error(`${share!.online()} of ${devices.length} device(s) up after ${s.startTimeoutS} s`)));
        });
        try {
          await Promise.race([share.started, timedOut]);
        } finally {
          cancelStart();
        }
      }
      await this.#report({ type: 'started', run: s.run, devices: devices.map((d) => d.id) });
      t0 = timeline.now();
      let loadgen: AgentLoadReport | undefined;
      if (s.loadgen) {
        // This agent's part of the scenario: its share of the rate and of the minimum counts.
        const index = s.shares.findIndex((sh) => sh.agent === this.o.id);
        loadgen = await share.runLoad(loadShare(s.loadgen, { ...s.shares[index]!, total: s.devices.length }, index), s.run, abort.signal);
      } else {
        // The run's length is kept on the agent's own timeline, from when its devices are up.
        await new Promise<void>((resolve) => {
          const cancel = timeline.at(t0! + s.durationS * 1000, () => { this.#interrupt = undefined; resolve(); });
          this.#interrupt = () => { cancel(); this.#interrupt = undefined; resolve(); };
          if (this.#stopping || abort.signal.aborted) this.#interrupt();
          abort.signal.addEventListener('abort', () => this.#interrupt?.(), { once: true });
        });
      }
      if (abort.signal.aborted) log(`run ${s.run}: ended early by the coordinator`);
      let produced: Record<string, number> | undefined;
      if (s.session && s.loadgen && !this.#stopping && !abort.signal.aborted) {
        // Kept for the session's next run; what each device produced is known when they stop.
        this.#keep(s.session, devices, share);
      } else {
        ({ produced } = await share.stop({ clean: !this.#stopping }));
      }
      share = undefined;
      if (this.#stopping) throw new Error(`agent ${this.o.id} was stopped before the end of the run`);
      await this.#end({ type: 'done', run: s.run, devices: devices.map((d) => d.id), ...(produced ? { produced } : {}), ...(loadgen ? { loadgen } : {}) }, () => cancelBeat());
      log(`run ${s.run}: done`);
    } catch (e) {
      const error = (e as Error).message;
      log(`run ${s.run} failed: ${error}`);
      await share?.stop({ clean: false }).catch(() => undefined);
      await this.#end({ type: 'failed', run: s.run, error }, () => cancelBeat()).catch(() => undefined);
    }
  }

  /** The run's last word: idle again before the report, so the coordinator's next scenario (sent on it) finds the agent free. */
  async #end(report: AgentReport, cancelBeat: () => void): Promise<void> {
    cancelBeat();
    if (!this.#stopping) await this.#status({ state: 'idle' }).catch(() => undefined);
    this.#running = undefined;
    this.#abort = undefined;
    await this.#report(report);
  }

  /** Keeps a session's devices running for its next run, at most its keepS. */
  #keep(session: NonNullable<Scenario['session']>, devices: ScenarioDevice[], share: RunningShare): void {
    const cancelTimer = this.o.timeline.at(this.o.timeline.now() + session.keepS * 1000, () => void this.#release(`no run of session ${session.id} for ${session.keepS} s`));
    this.#kept = { session: session.id, devices: devices.map((d) => d.id).join(), share, cancelTimer };
  }

  /** Stops a session's kept devices (their state removed: every run of it was done). */
  async #release(why: string): Promise<void> {
    const kept = this.#kept;
    if (!kept) return;
    this.#kept = undefined;
    kept.cancelTimer();
    this.o.log(`session ${kept.session}: stopping its devices (${why})`);
    await kept.share.stop({ clean: true }).catch((e: Error) => this.o.log(`session ${kept.session}: ${e.message}`));
  }

  #status(s: AgentStatus): Promise<void> {
    const { mqtt, prefix, fleet, id, capacity } = this.o;
    const body: AgentStatus = s.state === 'offline' ? s : { ...s, capacity, willSeq: this.#willSeq };
    return mqtt.publish(agentStatusTopic(prefix, fleet, id), encodeFleetMessage(id, this.#seq++, 'agent-status', body, this.o.signer), { qos: 1, retain: true });
  }

  #report(r: AgentReport): Promise<void> {
    const { mqtt, prefix, fleet, id } = this.o;
    return mqtt.publish(agentReportTopic(prefix, fleet, id), encodeFleetMessage(id, this.#seq++, 'agent-report', r, this.o.signer), { qos: 1 });
  }
}
