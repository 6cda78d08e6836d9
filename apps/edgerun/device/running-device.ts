/**
 * One running device daemon: its reporter (broker connection, durable outbox, signing), the Device
 * (stream pipeline over the data-set replay), model deployments and signed commands.
 *
 * `startDevice` is `edgerun serve`'s: it loads its own config, backends, models and data set.
 * `runDevice` takes them ready-made, so a fleet worker builds many devices in one thread that share
 * the models, the data set and the onnxruntime sessions (apps/edgerun/fleet/worker.ts).
 */
import { join } from 'node:path';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import type { EmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import type { BackendRegistry } from '../../../runtime/backend.js';
import type { Config } from '../../../runtime/config.js';
import type { Dataset } from '../../../runtime/dataset.js';
import { validateFeeds } from '../../../runtime/model/feeds.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import type { PowerSensor } from '../../../runtime/power/sensor.js';
import type { DeployAgent } from '../../../runtime/deploy/agent.js';
import { deviceTopic, type DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { Reporter } from '../../../runtime/telemetry/reporter.js';
import { createRegistry, readModel } from '../context.js';
import { version } from '../package-info.js';
import { Device, modelIdOf, type EnergySink } from './device.js';
import { attachCommands, type AttachedCommands } from './commands.js';
import { attachDeployAgent, deployingTarget, deviceHost, openDeployment } from './deployment.js';
import { deviceSensor, guardCanary, openReporting } from './daemon.js';

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

interface Connection {
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

export interface StartDeviceOptions extends Connection {
  config: Config;
  models: string[];
  data: string;
}

export interface RunDeviceOptions extends Connection {
  config: Config;
  /** The device's backends; stop() disposes them. */
  registry: BackendRegistry;
  /** Model id → loaded model. */
  models: ReadonlyMap<string, LoadedModel>;
  source: DatasetSource;
  sensor?: PowerSensor;
  /** Drained by the energy of every inference (a simulated battery). */
  battery?: EnergySink;
  canary?: Dataset;
  /** Birth fields besides runtime, group, models and profile. */
  birth?: Record<string, unknown>;
  /** How the outbox and progress logs are appended (drivers/storage/fs-storage.ts; default 'async'). */
  appends?: 'async' | 'sync';
  /** Runs once the models are placed (programmed), before the first inference: e.g. ageing the emulated device. */
  beforeStart?: (device: Device) => Promise<void>;
  /** Its own streams (default), or only a load generator's queries (Device.query). */
  drive?: 'streams' | 'queries';
  /** A modelled service time per inference, ms (runtime/service-time.ts). */
  serviceTimeMs?: () => number;
}

export async function startDevice(o: StartDeviceOptions): Promise<RunningDevice> {
  const { config } = o;
  const registry = createRegistry(config);
  const models = new Map<string, LoadedModel>();
  for (const path of o.models) {
    const id = modelIdOf(path);
    if (models.has(id)) throw new Error(`two models named '${id}' (${path})`);
    models.set(id, await readModel(path, config));
  }
  const source = await DatasetSource.open(o.data);
  for (const [id, model] of models) checkFedByDataset(id, model, source, o.data);
  return runDevice({ ...o, registry, models, source, sensor: await deviceSensor(config), canary: await guardCanary(config) });
}

/** Each inference feeds one data-set sample to the model's one input: refuse at start a model it cannot feed, rather than fail every inference. */
function checkFedByDataset(id: string, model: LoadedModel, source: DatasetSource, data: string): void {
  if (model.inputs.length !== 1) throw new Error(`model '${id}' takes ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); serve feeds it one sample of ${data} per inference`);
  const sample = source.sample(0);
  validateFeeds(model.inputs, { [model.inputs[0]!.name]: { type: 'float32', data: sample.input, dims: sample.shape } }, `model '${id}' fed from ${data}`);
}

export async function runDevice(o: RunDeviceOptions): Promise<RunningDevice> {
  const { config, registry } = o;
  const log = o.log ?? (() => undefined);
  const reporting = await openReporting({
    config, stateDir: o.stateDir, outboxDir: o.outboxDir ?? join(o.stateDir, 'outbox'), url: o.url, protocolVersion: o.protocolVersion, log, appends: o.appends,
    birth: { models: [...o.models.keys()], ...o.birth },
  }).catch(async (e: unknown) => { await registry.dispose(); throw e; });
  const { reporter, mqtt, address, broker, url, keyDir } = reporting;

  let device: Device;
  let commands: AttachedCommands | undefined;
  let agent: DeployAgent | undefined;
  try {
    const deviceStorage = new FsStorage(join(o.stateDir, 'device'), undefined, undefined, o.appends);
    // Deployed versions serve in place of the given models (apps/edgerun/device/deployment.ts).
    const deployment = await openDeployment({ config, stateDir: o.stateDir, publisher: reporter, log, onActive: (active) => reporter.setBirth({ modelVersions: active }) }, o.models);
    device = await Device.create({
      config, registry, models: deployment.models, versions: deployment.versions, source: o.source, publisher: reporter, storage: deviceStorage,
      rateHz: o.rateHz, count: o.count, drive: o.drive, ...(o.serviceTimeMs ? { serviceTimeMs: o.serviceTimeMs } : {}), telemetryIntervalMs: config.mqtt.telemetryIntervalMs, sensor: o.sensor, battery: o.battery, canary: o.canary, log,
      extraTelemetry: () => ({ reporter: reporter.counters, ...(commands ? { commands: commands.processor.counters() } : {}) }),
    });
    deployment.deployer.attach(deviceHost(device, o.models, deployment.deployer, { runtimeVersion: version, profile: config.analog.profile }));
    agent = await attachDeployAgent({ deployer: deployment.deployer, mqtt, address, stateDir: o.stateDir, config, log });
    commands = await attachCommands({ config, mqtt, reporter, address, keyDir, target: deployingTarget(device.pipeline, deployment.deployer, agent), log });
    await o.beforeStart?.(device);
  } catch (e) {
    await commands?.detach();
    await agent?.close();
    await reporting.close(0);
    await registry.dispose();
    throw e;
  }
  reporting.connect();
  device.start();
  log(`device ${address.fleet}/${address.device}: ${[...o.models.keys()].join(', ')} → ${deviceTopic(address, 'results')} on ${redactUrl(url)}`);

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
