/**
 * `edgerun serve`: the device daemon. Loads the config and models, replays a data set as a sensor
 * at a rate, runs inference through the scheduler, and reports over MQTT: `results` (durable
 * outbox, QoS 1), periodic `telemetry`, `events`, retained `status` (birth, will "offline"), and
 * signed commands in. Without config mqtt.url it starts the embedded broker and says where it is.
 *
 * SIGINT/SIGTERM: stop producing, finish the requests in flight, wait (bounded) for the outbox to
 * be acknowledged, publish status offline, disconnect. With --count N: exactly N result numbers over
 * all runs on this state directory, then exit 0 once the broker acknowledged them.
 */
import { join, resolve } from 'node:path';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { FILE_LIMITS, readFileLimited } from '../../../drivers/storage/read-file.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import type { EmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';
import type { Config } from '../../../runtime/config.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import { deviceTopic, type DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { Reporter } from '../../../runtime/telemetry/reporter.js';
import { createRegistry, loadConfig, readModel, type GlobalOptions } from '../context.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { packageRoot, version } from '../package-info.js';
import { Device, modelIdOf } from '../device/device.js';
import { attachCommands, type AttachedCommands } from '../device/commands.js';
import { attachDeployAgent, deployingTarget, deviceHost, openDeployment } from '../device/deployment.js';
import type { DeployAgent } from '../../../runtime/deploy/agent.js';
import { deviceSensor, guardCanary, openReporting } from '../device/daemon.js';

export interface ServeOptions {
  model?: string[];
  rate: number;
  count?: number;
  data?: string;
  stateDir?: string;
  /** Broker URL (overrides config mqtt.url). */
  url?: string;
  /** MQTT protocol version (overrides config mqtt.protocolVersion). */
  protocol?: 4 | 5;
  quiet?: boolean;
  source?: string;
}

export const BUNDLED_MODELS = ['models/mlp.onnx', 'models/cnn.onnx'];
export const BUNDLED_DATA = 'models/data/fashion-mnist-test-2000.bin';

export interface RunningDevice {
  device: Device;
  /** Model deployments of this daemon (runtime/deploy/agent.ts). */
  agent: DeployAgent;
  reporter: Reporter;
  address: DeviceAddress;
  /** The embedded broker, when this daemon started one. */
  broker?: EmbeddedBroker;
  url: string;
  /** Stops producing, drains (bounded), status offline, disconnects, closes what it started. */
  stop(opts?: { drainMs?: number }): Promise<void>;
}

export interface StartDeviceOptions {
  config: Config;
  models: string[];
  data: string;
  rateHz: number;
  count?: number;
  stateDir: string;
  /** Outbox journal directory (default <stateDir>/outbox). */
  outboxDir?: string;
  /** Overrides config.mqtt.url; when neither is set an embedded broker is started. */
  url?: string;
  /** Overrides config.mqtt.protocolVersion (4 for an Aedes broker). */
  protocolVersion?: 4 | 5;
  log?: (line: string) => void;
}

export async function startDevice(o: StartDeviceOptions): Promise<RunningDevice> {
  const { config } = o;
  const log = o.log ?? (() => undefined);
  const registry = createRegistry(config);
  const loaded = new Map<string, LoadedModel>();
  for (const path of o.models) {
    const id = modelIdOf(path);
    if (loaded.has(id)) throw new Error(`two models named '${id}' (${path})`);
    loaded.set(id, await readModel(path, config));
  }
  const source = await DatasetSource.open(o.data);
  const sensor = await deviceSensor(config);
  const canary = await guardCanary(config);
  const reporting = await openReporting({
    config, stateDir: o.stateDir, outboxDir: o.outboxDir ?? join(o.stateDir, 'outbox'), url: o.url, protocolVersion: o.protocolVersion, log,
    birth: { models: [...loaded.keys()] },
  });
  const { reporter, mqtt, address, broker, url, keyDir } = reporting;

  let device: Device;
  let commands: AttachedCommands | undefined;
  let agent: DeployAgent | undefined;
  try {
    const deviceStorage = new FsStorage(join(o.stateDir, 'device'));
    // Deployed versions serve in place of the given models (apps/edgerun/device/deployment.ts).
    const deployment = await openDeployment({ config, stateDir: o.stateDir, publisher: reporter, log, onActive: (active) => reporter.setBirth({ modelVersions: active }) }, loaded);
    device = await Device.create({
      config, registry, models: deployment.models, versions: deployment.versions, source, publisher: reporter, storage: deviceStorage,
      rateHz: o.rateHz, count: o.count, telemetryIntervalMs: config.mqtt.telemetryIntervalMs, sensor, canary, log,
      extraTelemetry: () => ({ reporter: reporter.counters, ...(commands ? { commands: commands.processor.counters() } : {}) }),
    });
    deployment.deployer.attach(deviceHost(device, loaded, deployment.deployer, { runtimeVersion: version, profile: config.analog.profile }));
    agent = await attachDeployAgent({ deployer: deployment.deployer, mqtt, address, stateDir: o.stateDir, config, log });
    commands = await attachCommands({ config, mqtt, reporter, address, keyDir, target: deployingTarget(device.pipeline, deployment.deployer, agent), log });
  } catch (e) {
    await agent?.close();
    await reporting.close(0);
    await registry.dispose();
    throw e;
  }
  device.start();
  log(`device ${address.fleet}/${address.device}: ${[...loaded.keys()].join(', ')} → ${deviceTopic(address, 'results')} on ${redactUrl(url)}`);

  let stopping: Promise<void> | undefined;
  return {
    device, agent: agent!, reporter, address, broker, url,
    stop(opts = {}) {
      stopping ??= (async () => {
        await commands!.detach();
        await agent!.close();
        await device.stop();
        await reporting.close(opts.drainMs ?? 10_000);
        await registry.dispose();
      })();
      return stopping;
    },
  };
}

export async function serveCommand(opts: ServeOptions, global: GlobalOptions): Promise<void> {
  if (opts.source !== undefined && opts.source !== 'dataset') throw new Error(`--source ${opts.source}: only 'dataset' (replay of an EDGD file) is available`);
  const config = await loadConfig(global);
  const models = opts.model?.length ? opts.model : BUNDLED_MODELS.map((m) => join(packageRoot, m));
  const data = opts.data ?? join(packageRoot, BUNDLED_DATA);
  const stateDir = resolve(opts.stateDir ?? config.mqtt.stateDir);
  // The configured outbox dir, unless --state-dir puts everything of this device in one place.
  const outboxDir = opts.stateDir ? undefined : resolve(config.mqtt.outbox.dir);
  const log = opts.quiet ? undefined : (line: string): void => console.log(line);
  const running = await startDevice({
    config, models, data, rateHz: opts.rate, count: opts.count, stateDir, outboxDir, url: opts.url, log,
    ...(opts.protocol !== undefined ? { protocolVersion: opts.protocol } : {}),
  });
  if (running.broker) console.log(`embedded MQTT broker: ${running.broker.url}  ${running.broker.wsUrl ?? ''}`);
  const protocol = running.broker ? 4 : opts.protocol ?? config.mqtt.protocolVersion;
  console.log(`serving; watch with: npx edgerun listen --url ${redactUrl(running.url)}${protocol === 4 ? ' --protocol 4' : ''}`);

  const signalled = new Promise<string>((resolveSignal) => {
    const on = (sig: string) => () => resolveSignal(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
  if (opts.count !== undefined) {
    const why = await Promise.race([running.device.done.then(() => 'count'), signalled]);
    if (why === 'count') {
      // Exactly N results: exit once the broker acknowledged every one of them (or on a signal:
      // what is not acknowledged stays in the outbox for the next start).
      let signal: string | undefined;
      void signalled.then((sig) => { signal = sig; });
      while (running.reporter.counters.pending > 0 && signal === undefined) {
        await Promise.race([running.reporter.drain(1_000).catch(() => undefined), signalled]);
      }
      if (signal === undefined) console.log(`${opts.count} results produced and acknowledged`);
      else console.log(`${signal}: ${running.reporter.counters.pending} messages wait in the outbox for the next start`);
    }
  } else {
    await signalled;
  }
  await running.stop();
}
