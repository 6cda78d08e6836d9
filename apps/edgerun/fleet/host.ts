/**
 * The fleet host: N emulated edgerun devices packed into a few worker threads (plain
 * node:worker_threads, default one per core), each thread hosting its share (apps/edgerun/fleet/worker.ts).
 *
 *   const host = startFleetHost({ devices, url: 'mqtt://127.0.0.1:1883', stateDir: 'fleet-state', log });
 *   host.on('device-exit', (e) => …);       // { id, reason: 'stopped' | 'failed' | 'worker-lost', error? }
 *   await host.started;                     // every device online or failed
 *   host.devices(); host.rssBytes(); host.threads(since);   // event-loop delay and GC pauses per thread
 *   host.issue(id, query);                  // scenario mode (queries: true): a load generator's query to one device
 *   await host.stop();                      // devices drain their outboxes (bounded), go offline, threads end
 *
 * Devices are spread round-robin, so each group is split across the threads. Model and profile
 * paths in the specs are resolved against `baseDir`; bare model names (mlp, cnn) are the bundled
 * models. Everything a device keeps (outbox, progress, keys, deployments) is in <stateDir>/<device>/,
 * so a host restarted on the same state dir resumes every device where it stopped.
 */
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import { resolveConfig, type Config } from '../../../runtime/config.js';
import type { DeviceSpec } from '../../../runtime/fleet/fleet-file.js';
import { readModel } from '../context.js';
import { modelIdOf } from '../device/device.js';
import { packageRoot } from '../package-info.js';
import { BUNDLED_DATA } from '../commands/serve.js';
import type { DeviceQuery } from '../../../runtime/fleet/fleet-sut.js';
import type { DeviceStats, FromWorker, ThreadStats, ToWorker, WorkerInput } from './protocol.js';

export interface FleetHostOptions {
  devices: DeviceSpec[];
  url: string;
  /** MQTT protocol version (4 for an Aedes broker; default config mqtt.protocolVersion). */
  protocolVersion?: 4 | 5;
  /** Worker threads (default: one per core, at most one per device). */
  workers?: number;
  /** Each device keeps its state in <stateDir>/<device id>/. */
  stateDir: string;
  /** Topic prefix (default config mqtt.prefix). */
  prefix?: string;
  /** Overrides every device's `sign` (undefined: as the fleet file says). */
  signing?: boolean;
  log?: (line: string) => void;
  /** Fleet name in the topics (default 'default'). */
  fleet?: string;
  /** The configuration every device starts from (default: the defaults). */
  config?: Config;
  /** Relative model and profile paths are resolved against it (default: the working directory). */
  baseDir?: string;
  /** EDGD data set each device replays (default: the bundled Fashion-MNIST subset). */
  data?: string;
  /** Bounded wait per device for its outbox to drain on stop (default 10 s). */
  drainMs?: number;
  /** Scenario mode: the devices run only the queries issue() gives them, not their own streams at their rates. */
  queries?: boolean;
}

export type HostedState = 'starting' | 'online' | 'failed' | 'stopped' | 'lost';

export interface HostedDevice {
  id: string;
  group: string;
  worker: number;
  state: HostedState;
  /** Results accepted into the outbox, over every run on the state dir. */
  results: number;
  /** Messages in the outbox not yet acknowledged by the broker. */
  pending: number;
  /** Times its worker thread died under it (then restarted on the same state: lost, then recovered once online again). */
  lost: number;
  error?: string;
}

/** A worker thread's event loop over a window (from its per-second reports). */
export interface ThreadFigures {
  worker: number;
  /** Seconds reported in the window. */
  seconds: number;
  /** The worst second's event-loop delay p99, and the longest delay, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Seconds whose longest event-loop delay passed 100 ms, and when they ended (s into the window) with that delay (ms). */
  slowSeconds: number;
  slow: { atS: number; delayMs: number }[];
  /** Share of the window spent in GC pauses, and the longest pause (ms). */
  gcShare: number;
  gcMaxMs: number;
}

export interface DeviceExit { id: string; reason: 'stopped' | 'failed' | 'worker-lost'; error?: string }

export interface FleetHostEvents {
  'device-online': [id: string];
  'device-exit': [exit: DeviceExit];
  'worker-exit': [exit: { worker: number; code: number; error?: string }];
  /** A worker thread died during the run; it is started again with its devices on their state dirs (`restart`: how many times now). */
  'worker-restart': [restart: { worker: number; restart: number; devices: string[] }];
  /** A query issue() sent to a device its thread does not run (any more): no result will come for it. */
  'query-refused': [refusal: { device: string; run: string; id: number; error: string }];
}

export interface FleetHost {
  /** Resolves once every device is online or failed. */
  readonly started: Promise<void>;
  devices(): HostedDevice[];
  /** Resident set size of the host process (every worker thread included). */
  rssBytes(): number;
  /** Each worker thread's event loop since `sinceMs` (performance.now() of this thread; default: from the start). */
  threads(sinceMs?: number): ThreadFigures[];
  stop(opts?: { drainMs?: number }): Promise<void>;
  /** Hands a load generator's query to a device (scenario mode): it runs it and publishes the results like any other. */
  issue(device: string, query: DeviceQuery): void;
  on<E extends keyof FleetHostEvents>(event: E, listener: (...args: FleetHostEvents[E]) => void): this;
  off<E extends keyof FleetHostEvents>(event: E, listener: (...args: FleetHostEvents[E]) => void): this;
}

/** A bundled model name (mlp, cnn) or a file relative to baseDir. */
function modelPath(model: string, baseDir: string): string {
  return /[/\\]/.test(model) || model.toLowerCase().endsWith('.onnx') ? resolve(baseDir, model) : join(packageRoot, 'models', `${model}.onnx`);
}

/** A profile name as it is, a profile file resolved against baseDir (loadProfile's own test for a path). */
function profilePath(profile: string, baseDir: string): string {
  return /[/\\]/.test(profile) || profile.endsWith('.json') ? resolve(baseDir, profile) : profile;
}

/**
 * Specs with their model and profile paths resolved, checked before any thread or connection
 * starts: every distinct model loads and every distinct profile is valid, else one error naming it.
 */
export async function resolveFleetSpecs(devices: DeviceSpec[], baseDir: string, config: Config): Promise<DeviceSpec[]> {
  const resolved = devices.map((d) => ({ ...d, models: d.models.map((m) => modelPath(m, baseDir)), profile: profilePath(d.profile, baseDir) }));
  const ids = new Set<string>();
  for (const d of resolved) {
    if (ids.has(d.id)) throw new Error(`device '${d.id}' appears twice in the fleet`);
    ids.add(d.id);
    const modelIds = d.models.map(modelIdOf);
    const twice = modelIds.find((id, i) => modelIds.indexOf(id) !== i);
    if (twice !== undefined) throw new Error(`group '${d.group}': two models named '${twice}' (${d.models.join(', ')})`);
  }
  for (const path of new Set(resolved.flatMap((d) => d.models))) await readModel(path, config, () => undefined);
  for (const profile of new Set(resolved.map((d) => d.profile))) {
    try {
      loadProfile(profile);
    } catch (e) {
      throw new Error((e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' '));
    }
  }
  return resolved;
}

/** The data set the devices replay: options.data against baseDir, else the bundled Fashion-MNIST subset. */
export function fleetDataPath(options: Pick<FleetHostOptions, 'data' | 'baseDir'>): string {
  return options.data ? resolve(options.baseDir ?? process.cwd(), options.data) : join(packageRoot, BUNDLED_DATA);
}

/** Where the worker entry is: the compiled .js beside this file, or the .ts source through tsx. */
function spawnWorker(input: WorkerInput): Worker {
  const compiled = import.meta.url.endsWith('.js');
  const entry = new URL(compiled ? './worker.js' : './worker.ts', import.meta.url);
  if (compiled) return new Worker(entry, { workerData: input });
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); });`, { eval: true, workerData: input });
}

/** Restarts of one worker thread, at most, in one run. */
const MAX_RESTARTS = 3;

class Host extends EventEmitter implements FleetHost {
  readonly started: Promise<void>;
  readonly #devices = new Map<string, HostedDevice>();
  readonly #workers: Worker[] = [];
  /** Per worker, its per-second thread reports and when they arrived (the last hour). */
  readonly #threadStats: { at: number; s: ThreadStats }[][] = [];
  readonly #exited: Promise<void>[] = [];
  /** Each worker's devices and how it was started, to start it again if it dies. */
  readonly #inputs: WorkerInput[] = [];
  #stopping: Promise<void> | undefined;
  #drainMs: number;
  #starting = 0;
  /** Settles once the specs are checked and the threads started (rejects when a spec is bad). */
  readonly #spawned: Promise<void>;
  #startedResolve!: () => void;
  #startedReject!: (e: Error) => void;

  constructor(readonly options: FleetHostOptions) {
    super();
    this.#drainMs = options.drainMs ?? 10_000;
    const online = new Promise<void>((res, rej) => { this.#startedResolve = res; this.#startedReject = rej; });
    const config = options.config ?? resolveConfig({});
    // Checked before any thread starts: a bad spec rejects `started` with nothing running.
    this.#spawned = resolveFleetSpecs(options.devices, options.baseDir ?? process.cwd(), config).then((specs) => this.#spawn(specs, config));
    this.started = this.#spawned.then(() => online);
    this.started.catch(() => undefined);
  }

  #spawn(specs: DeviceSpec[], config: Config): void {
    const options = this.options;
    const n = Math.max(1, Math.min(options.workers ?? availableParallelism(), specs.length));
    const shares: DeviceSpec[][] = Array.from({ length: n }, () => []);
    specs.forEach((d, i) => {
      shares[i % n]!.push(options.signing === undefined ? d : { ...d, sign: options.signing });
      this.#devices.set(d.id, { id: d.id, group: d.group, worker: i % n, state: 'starting', results: 0, pending: 0, lost: 0 });
    });
    this.#starting = specs.length;
    if (specs.length === 0) this.#startedResolve();
    const data = fleetDataPath(options);
    shares.forEach((devices, w) => this.#startWorker({
      fleet: options.fleet ?? 'default', devices, config, url: options.url, protocolVersion: options.protocolVersion, prefix: options.prefix,
      stateDir: resolve(options.stateDir), data, drainMs: this.#drainMs, ...(options.queries ? { queries: true } : {}), worker: w, restart: 0,
    }));
  }

  #startWorker(input: WorkerInput): void {
    const w = input.worker;
    const worker = spawnWorker(input);
    this.#inputs[w] = input;
    this.#workers[w] = worker;
    worker.on('message', (m: FromWorker) => this.#onMessage(w, m));
    worker.on('error', (e) => this.options.log?.(`worker ${w}: ${e.message}`));
    this.#exited[w] = new Promise((res) => worker.once('exit', (code) => { this.#onExit(w, code); res(); }));
  }

  #settle(id: string, state: HostedState, error?: string): void {
    const d = this.#devices.get(id);
    if (!d) return;
    const wasStarting = d.state === 'starting';
    d.state = state;
    if (error !== undefined) d.error = error;
    if (wasStarting && --this.#starting === 0) this.#startedResolve();
  }

  #onMessage(worker: number, m: FromWorker): void {
    switch (m.type) {
      case 'online':
        this.#settle(m.id, 'online');
        this.emit('device-online', m.id);
        break;
      case 'failed':
        this.options.log?.(`device ${m.id}: ${m.error}`);
        this.#settle(m.id, 'failed', m.error);
        this.emit('device-exit', { id: m.id, reason: 'failed', error: m.error } satisfies DeviceExit);
        break;
      case 'exited':
        this.#update(m.stats);
        this.#settle(m.id, 'stopped');
        this.emit('device-exit', { id: m.id, reason: m.reason } satisfies DeviceExit);
        break;
      case 'stats': {
        for (const s of m.devices) this.#update(s);
        const log = (this.#threadStats[worker] ??= []);
        log.push({ at: performance.now(), s: m.thread });
        if (log.length > 3600) log.shift();
        break;
      }
      case 'fatal':
        this.options.log?.(`worker ${worker}: ${m.error}`);
        this.#startedReject(new Error(`fleet worker ${worker}: ${m.error}`));
        break;
      case 'query-refused':
        this.emit('query-refused', { device: m.device, run: m.run, id: m.id, error: m.error });
        break;
    }
  }

  #update(s: DeviceStats): void {
    const d = this.#devices.get(s.id);
    if (d) Object.assign(d, { results: s.results, pending: s.pending });
  }

  #onExit(worker: number, code: number): void {
    // Devices of a thread that ended without stopping them are lost (their outboxes keep what was not acknowledged).
    const lost: string[] = [];
    for (const d of this.#devices.values()) {
      if (d.worker !== worker || d.state === 'stopped' || d.state === 'failed') continue;
      this.#settle(d.id, 'lost');
      d.lost++;
      lost.push(d.id);
      this.emit('device-exit', { id: d.id, reason: 'worker-lost' } satisfies DeviceExit);
    }
    this.emit('worker-exit', { worker, code });
    // A thread that died during the run starts again with its devices: on their state dirs they resume
    // (result numbers, unacknowledged messages). A thread dying again and again is left down.
    const input = this.#inputs[worker]!;
    if (this.#stopping || !lost.length || input.restart >= MAX_RESTARTS) return;
    const restart = input.restart + 1;
    this.options.log?.(`worker ${worker} died (code ${code}) under ${lost.length} device(s); starting it again (${restart} of at most ${MAX_RESTARTS})`);
    this.emit('worker-restart', { worker, restart, devices: lost });
    this.#startWorker({ ...input, devices: input.devices.filter((d) => lost.includes(d.id)), restart });
  }

  devices(): HostedDevice[] {
    return [...this.#devices.values()].map((d) => ({ ...d }));
  }

  issue(device: string, query: DeviceQuery): void {
    const d = this.#devices.get(device);
    if (!d) throw new Error(`no device '${device}' in this fleet`);
    const message: ToWorker = { type: 'query', device, query };
    this.#workers[d.worker]!.postMessage(message);
  }

  rssBytes(): number {
    return process.memoryUsage.rss();
  }

  threads(sinceMs = 0): ThreadFigures[] {
    return this.#workers.map((_, worker) => {
      const records = (this.#threadStats[worker] ?? []).filter((r) => r.at >= sinceMs);
      const window = records.map((r) => r.s);
      const periodMs = window.reduce((t, s) => t + s.periodMs, 0);
      return {
        worker, seconds: window.length,
        loopDelayP99Ms: Math.max(0, ...window.map((s) => s.loopDelayP99Ms)),
        loopDelayMaxMs: Math.max(0, ...window.map((s) => s.loopDelayMaxMs)),
        slowSeconds: window.filter((s) => s.loopDelayMaxMs > 100).length,
        slow: records.filter((r) => r.s.loopDelayMaxMs > 100).map((r) => ({ atS: Math.round((r.at - sinceMs) / 100) / 10, delayMs: Math.round(r.s.loopDelayMaxMs) })),
        gcShare: periodMs > 0 ? window.reduce((t, s) => t + s.gcMs, 0) / periodMs : 0,
        gcMaxMs: Math.max(0, ...window.map((s) => s.gcMaxMs)),
      };
    });
  }

  stop(opts: { drainMs?: number } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#spawned.catch(() => undefined);
      const drainMs = opts.drainMs ?? this.#drainMs;
      const stop: ToWorker = { type: 'stop', drainMs };
      for (const w of this.#workers) w.postMessage(stop);
      await Promise.all(this.#exited);
    })();
    return this.#stopping;
  }
}

/**
 * Starts the fleet: checks the specs (models load, profiles valid), then spreads the devices over
 * the worker threads. A bad spec rejects `started` before anything starts.
 */
export function startFleetHost(options: FleetHostOptions): FleetHost {
  return new Host(options);
}
