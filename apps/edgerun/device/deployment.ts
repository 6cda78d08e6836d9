/**
 * Deployments on the daemon: the Deployer (runtime/deploy) over <state dir>/deploy, the device's
 * trust store, its Device as the DeployHost, and the DeployAgent on the daemon's MQTT connection.
 * Every status goes out on `deploy/status` (retained); each change of state also on `events`.
 *
 * Failpoint for crash tests: FAILPOINT_EDGERUN_DEPLOY=<phase> (receiving, verifying, staged,
 * self-test, switching) SIGKILLs the process right after that phase is persisted; `switched`, in
 * `switching` right after the pointer names the new version, before the model is swapped.
 */
import { join } from 'node:path';
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { httpDownload } from '../../../drivers/http/download.js';
import { FsStorage, FsStorageTree } from '../../../drivers/storage/fs-storage.js';
import { keyDirOf } from '../context.js';
import type { Config } from '../../../runtime/config.js';
import { DeployAgent } from '../../../runtime/deploy/agent.js';
import { Deployer, type DeployHost, type DeployPhase, type DeployStatus } from '../../../runtime/deploy/installer.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import type { CommandTarget, DeployArgs } from '../../../runtime/telemetry/commands.js';
import { KEY_FILE_MAX_BYTES, TrustStore } from '../../../runtime/telemetry/keys.js';
import type { MqttPort } from '../../../runtime/telemetry/mqtt-port.js';
import type { DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { Device } from './device.js';
import type { Publisher } from '../../../runtime/pipeline/stream-pipeline.js';

export interface DeploymentOptions {
  config: Config;
  stateDir: string;
  publisher: Publisher;
  /** The versions each model serves changed (and once at start): the daemon names them in its birth. */
  onActive?(active: Record<string, string>): void | Promise<void>;
  log?: (line: string) => void;
}

export interface OpenedDeployment {
  deployer: Deployer;
  /** What the device serves at start: the models it was given, with deployed versions in their place. */
  models: Map<string, LoadedModel>;
  versions: Map<string, string>;
}

/** Opens the deploy state (settling an interrupted deployment) and picks the models to serve. */
export async function openDeployment(o: DeploymentOptions, given: ReadonlyMap<string, LoadedModel>): Promise<OpenedDeployment> {
  const { config } = o;
  const crashIn = process.env.FAILPOINT_EDGERUN_DEPLOY;
  // Each change of state also goes on `events` (progress only on deploy/status).
  const lastState = new Map<string, string>();
  function report(s: DeployStatus): Promise<unknown> {
    const changed = lastState.get(s.id) !== s.state;
    lastState.set(s.id, s.state);
    if (changed) o.log?.(`deploy ${s.id}: ${s.state}${s.model ? ` ${s.model} ${s.version ?? ''}` : ''}${s.reason ? ` (${s.reason}: ${s.detail})` : ''}`);
    if (changed && (s.state === 'active' || s.state === 'rolled-back')) void Promise.resolve(o.onActive?.(s.active)).catch(() => undefined);
    const out = o.publisher.publish('deploy/status', s);
    return changed ? Promise.all([out, o.publisher.publish('events', { type: 'deploy', ...s })]) : out;
  }
  const versions = new Map<string, string>();
  const trust = await TrustStore.open(new FsStorage(keyDirOf(config, o.stateDir), 0o600, KEY_FILE_MAX_BYTES), config.security.trustedKeysFile);
  const deployer = await Deployer.open({
    root: new FsStorage(join(o.stateDir, 'deploy')),
    versions: new FsStorageTree(join(o.stateDir, 'deploy', 'versions')),
    trust: { trusted: (k) => trust.trusted(k), reload: () => trust.reload() },
    verify: nativeVerify,
    limits: { maxBytes: config.deploy.maxBundleMiB * 2 ** 20, maxModelBytes: config.model.maxSizeMiB * 2 ** 20 },
    keep: config.deploy.keep,
    report: async (s) => { await report(s); },
    onPhase: async (phase: DeployPhase) => {
      if (phase === 'verifying') await trust.reload();
      if (crashIn === phase) process.kill(process.pid, 'SIGKILL');
    },
    onPointerMoved: () => {
      if (crashIn === 'switched') process.kill(process.pid, 'SIGKILL');
    },
  });
  const models = new Map(given);
  for (const [id, v] of await deployer.activeModels()) {
    if (!given.has(id)) continue;
    models.set(id, v.model);
    versions.set(id, v.version);
  }
  await o.onActive?.(deployer.active);
  return { deployer, models, versions };
}

/** The Device as the Deployer sees it. */
export function deviceHost(device: Device, given: ReadonlyMap<string, LoadedModel>, deployer: Deployer, o: { runtimeVersion: string; profile?: string }): DeployHost {
  return {
    runtimeVersion: o.runtimeVersion,
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    streamInputs: (id) => device.streamInputs(id),
    activeVersion: (id) => deployer.active[id],
    place: (id, model) => device.placeCandidate(id, model),
    energyJ: (_id, model, placed) => device.energyPerInference(model, placed),
    activate: (id, model, placed, version) => device.swapModel(id, model, placed, version),
    baseModel: (id) => given.get(id),
  };
}

/** The DeployAgent on the daemon's connection, and the command target with deploy and rollback. */
export async function attachDeployAgent(o: { deployer: Deployer; mqtt: MqttPort; address: DeviceAddress; stateDir: string; config: Config; log?: (line: string) => void }): Promise<DeployAgent> {
  const agent = new DeployAgent({
    deployer: o.deployer, mqtt: o.mqtt, address: o.address, storage: new FsStorage(join(o.stateDir, 'deploy')),
    download: httpDownload, stallMs: o.config.deploy.transferTimeoutMs, log: o.log,
  });
  await agent.attach();
  return agent;
}

/** The device's command target (its stream pipeline) plus `deploy` and `rollback`. */
export function deployingTarget(target: CommandTarget, deployer: Deployer, agent: DeployAgent): CommandTarget {
  return {
    setPowerBudget: (c) => target.setPowerBudget(c),
    setPlacement: (c) => target.setPlacement(c),
    publishSnapshot: () => target.publishSnapshot(),
    pauseStream: (s) => target.pauseStream(s),
    resumeStream: (s) => target.resumeStream(s),
    deploy: (args: DeployArgs) => agent.start(args),
    rollback: async (args) => {
      const s = await deployer.rollback(`rollback-${Date.now()}`, args.model);
      return { model: s.model, version: s.version ?? null, from: s.from, active: s.active };
    },
  };
}
