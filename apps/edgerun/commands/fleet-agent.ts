/**
 * `edgerun fleet agent`: this machine's part of a fleet benchmark. It announces itself on the
 * broker, waits for scenarios from `edgerun fleet bench` (runtime/fleet/agent.ts), runs each share
 * of devices through the fleet host (apps/edgerun/fleet/host.ts) with a fresh state directory per
 * run, and reports back — until SIGINT/SIGTERM. With keys in its trust store it runs only scenarios
 * signed by one of them, fresh and not replayed.
 */
import { availableParallelism, hostname } from 'node:os';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nativeSigner, nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { FleetAgent, type RunningShare, type ShareHost } from '../../../runtime/fleet/agent.js';
import { agentStatusTopic } from '../../../runtime/fleet/fleet-protocol.js';
import { realTimeline } from '../../../runtime/fleet/timeline.js';
import { ReplayMemory } from '../../../runtime/telemetry/commands.js';
import { KEY_FILE_MAX_BYTES, TrustStore } from '../../../runtime/telemetry/keys.js';
import type { Config } from '../../../runtime/config.js';
import { keyDirOf, loadConfig, readKeyFile, type GlobalOptions } from '../context.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import { fleetDataPath, startFleetHost } from '../fleet/host.js';
import { FleetLoadGenerator, startScenarioConsumer } from '../fleet/fleet-loadgen.js';
import { toolClient } from './listen.js';

export interface FleetAgentOptions {
  url?: string;
  fleet: string;
  id?: string;
  workers?: number;
  stateDir: string;
  keyDir?: string;
  /** Key file signing the agent's statuses and reports (for coordinators that take signed agents only). */
  key?: string;
  prefix?: string;
  protocol?: 4 | 5;
}

/** The agent's id when none is given: the host name, made a topic level. */
const defaultId = (): string => hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'agent';

/**
 * The fleet host behind the agent's ShareHost port: each run's (or session's) devices keep their
 * state in <stateDir>/<run>/, removed when they stop cleanly with every outbox empty, kept otherwise.
 */
function fleetHostShare(o: { id: string; config: Config; url: string; protocol?: 4 | 5; prefix: string; fleet: string; workers: number; stateDir: string; log: (l: string) => void }): ShareHost {
  return {
    start(devices, run, { queries }): RunningShare {
      const dir = join(o.stateDir, run);
      const host = startFleetHost({
        devices, url: o.url, protocolVersion: o.protocol, workers: o.workers, stateDir: dir, prefix: o.prefix, fleet: o.fleet, config: o.config, log: o.log, queries,
      });
      return {
        started: host.started.then(() => {
          const failed = host.devices().filter((d) => d.state === 'failed');
          if (failed.length) throw new Error(`${failed.length} device(s) failed to start: ${failed[0]!.id}: ${failed[0]!.error ?? 'unknown error'}`);
        }),
        online: () => host.devices().filter((d) => d.state === 'online').length,
        async stop({ clean }) {
          await host.stop();
          const devices = host.devices();
          const undelivered = devices.reduce((n, d) => n + d.pending, 0);
          if (clean && undelivered === 0) await rm(dir, { recursive: true, force: true });
          else o.log(`${run}: devices' state kept for diagnosis in ${dir}${undelivered ? ` (${undelivered} message(s) not delivered)` : ''}`);
          return { produced: Object.fromEntries(devices.map((d) => [d.id, d.results])) };
        },
        // The load generator on this process's main thread, its own consumer on the broker for its devices' completions.
        async runLoad(load, scenarioRun, signal) {
          const online = host.devices().filter((d) => d.state === 'online').map((d) => d.id);
          const consumer = await startScenarioConsumer({ config: o.config, url: o.url, prefix: o.prefix, fleet: o.fleet, devices: online, ...(o.protocol ? { protocol: o.protocol } : {}) });
          try {
            const library = await DatasetSource.open(fleetDataPath({}));
            const generator = new FleetLoadGenerator({ host, devices: online, library: { count: library.count, label: (i) => library.dataset.labels[i]! }, run: `${scenarioRun}/${o.id}`, log: o.log, progress: false });
            consumer.onResult((body) => generator.offer(body));
            const outcome = await generator.run(load, signal);
            return { ...(outcome.result ? { result: outcome.result } : {}), queries: outcome.queries, received: consumer.resultsReceived(), busyShare: outcome.busyShare };
          } finally {
            await consumer.end();
          }
        },
      };
    },
  };
}

export async function fleetAgentCommand(opts: FleetAgentOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const id = opts.id ?? defaultId();
  const workers = opts.workers ?? availableParallelism();
  const url = opts.url ?? config.mqtt.url ?? 'mqtt://127.0.0.1:1883';
  const log = (line: string): void => console.error(`edgerun agent ${id}: ${line}`);
  agentStatusTopic(prefix, opts.fleet, id); // a fleet or id that cannot be a topic level is refused before anything is created
  const keys = new FsStorage(opts.keyDir ?? keyDirOf(config, opts.stateDir), 0o600, KEY_FILE_MAX_BYTES);
  const trust = await TrustStore.open(keys, config.security.trustedKeysFile);
  const trusted = trust.list().length > 0;
  const signer = opts.key ? nativeSigner(await readKeyFile(opts.key)) : undefined;
  let refused: string | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  const mqtt = toolClient(config, { url, clientId: `edgerun-agent-${id}`, clean: true, ...(opts.protocol ? { protocol: opts.protocol } : {}), onRefused: (r) => { refused = r; finish(); } });
  const agent = new FleetAgent({
    mqtt, prefix, fleet: opts.fleet, id, capacity: { workers, cpus: availableParallelism() },
    host: fleetHostShare({ id, config, url, protocol: opts.protocol, prefix, fleet: opts.fleet, workers, stateDir: opts.stateDir, log }),
    check: {
      clock: { now: () => Date.now() }, verify: nativeVerify,
      ...(trusted ? { trust, replay: await ReplayMemory.open(keys, 'scenario-replay.json') } : {}),
    },
    timeline: realTimeline, log, ...(signer ? { signer } : {}),
  });
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  agent.start();
  log(`on ${redactUrl(url)}, fleet ${opts.fleet}, ${workers} worker(s); ${trusted ? `scenarios signed by ${trust.list().map((k) => k.name).join(', ')} only` : 'no trust store: unsigned scenarios accepted'}; ${signer ? 'its messages signed' : 'its messages unsigned'}`);
  await finished;
  process.off('SIGINT', finish);
  process.off('SIGTERM', finish);
  await agent.stop();
  if (refused !== undefined) throw new Error(`the broker at ${redactUrl(url)} refused the connection: ${refused}`);
}
