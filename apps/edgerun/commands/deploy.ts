/**
 * `edgerun deploy build|sign|inspect|install|push`: model bundles (runtime/deploy) from the
 * operator's side, and a local install into a device's state directory.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import { DIGITAL_BACKEND } from '../../../drivers/digital/ort-backend.js';
import { nativeSigner, nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { FILE_LIMITS, readFileLimited, readTextLimited } from '../../../drivers/storage/read-file.js';
import { parseDataset } from '../../../runtime/dataset.js';
import { buildBundle } from '../../../runtime/deploy/build.js';
import { packBundle, readBundle } from '../../../runtime/deploy/bundle.js';
import { DeployError } from '../../../runtime/deploy/errors.js';
import type { DeployStatus } from '../../../runtime/deploy/installer.js';
import { pushBundle } from '../../../runtime/deploy/pusher.js';
import { parseSignature, signManifest } from '../../../runtime/deploy/signature.js';
import { parseWaves, Rollout, selectTargets } from '../../../runtime/deploy/rollout.js';
import { buildCommand, commandTopic } from '../../../runtime/telemetry/commands.js';
import { decodeMessage, type Encoding, type SigningKey } from '../../../runtime/telemetry/envelope.js';
import { deviceTopic, fleetFilter, type DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { MqttClient } from '../../../drivers/mqtt/mqtt-client.js';
import { verifyBundle } from '../../../runtime/deploy/verify.js';
import { fingerprint, KEY_FILE_MAX_BYTES, TrustStore } from '../../../runtime/telemetry/keys.js';
import type { Config } from '../../../runtime/config.js';
import { createRegistry, keyDirOf, loadConfig, readKeyFile, readModel, type GlobalOptions } from '../context.js';
import { Device, modelIdOf } from '../device/device.js';
import { deviceHost, openDeployment } from '../device/deployment.js';
import { packageRoot, version as runtimeVersion } from '../package-info.js';
import { formatTable } from '../table.js';
import { toolClient } from './listen.js';
import { BUNDLED_DATA, BUNDLED_MODELS } from './serve.js';

const limitsOf = (config: Config) => ({ maxBytes: config.deploy.maxBundleMiB * 2 ** 20, maxModelBytes: config.model.maxSizeMiB * 2 ** 20 });
const readBundleFile = async (path: string, config: Config): Promise<Uint8Array> => readFileLimited(path, limitsOf(config).maxBytes, 'bundle');

/** Writes next to the target and renames: a crash never leaves half a bundle under the name. */
async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

export interface BuildCliOptions {
  version: string;
  canary: string;
  labels?: string;
  profiles?: string;
  id?: string;
  canaryCount: number;
  minAgreement: number;
  minCosine: number;
  minRuntime?: string;
  out?: string;
  json?: boolean;
}

export async function deployBuildCommand(modelPath: string, opts: BuildCliOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const id = opts.id ?? modelIdOf(modelPath);
  const model = await readModel(modelPath, config);
  const canary = parseDataset(await readFileLimited(opts.canary, 256 * 2 ** 20, 'canary data set'), opts.canary);
  const labels = opts.labels === undefined ? [] : (await readTextLimited(opts.labels, FILE_LIMITS.small, 'labels file')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const profiles = opts.profiles === undefined ? [] : opts.profiles.split(',').map((p) => p.trim()).filter(Boolean);
  const registry = createRegistry(config);
  let bytes: Uint8Array;
  try {
    bytes = await buildBundle({
      id, version: opts.version, model, digital: await registry.get(DIGITAL_BACKEND), canary, canaryCount: opts.canaryCount,
      labels, profiles, minRuntime: opts.minRuntime ?? runtimeVersion, minAgreement: opts.minAgreement, minCosine: opts.minCosine,
    });
  } finally {
    await registry.dispose();
  }
  const out = opts.out ?? `${id}-${opts.version}.bundle`;
  await writeFileAtomic(out, bytes);
  const info = { bundle: out, model: id, version: opts.version, bytes: bytes.byteLength, signed: false };
  if (opts.json) console.log(JSON.stringify(info));
  else console.log(`built ${out}: ${id} ${opts.version}, ${bytes.byteLength} bytes, unsigned (next: edgerun deploy sign ${out} --key <operator.key>)`);
}

export async function deploySignCommand(bundlePath: string, opts: { key: string; out?: string; json?: boolean }, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const key = await readKeyFile(opts.key);
  const bundle = await readBundle(await readBundleFile(bundlePath, config), limitsOf(config));
  const signed = await packBundle({ ...bundle, signature: signManifest(bundle.manifestBytes, nativeSigner(key)) });
  const out = opts.out ?? bundlePath;
  await writeFileAtomic(out, signed);
  const info = { bundle: out, model: bundle.manifest.model.id, version: bundle.manifest.model.version, signer: fingerprint(key.publicKey), ...(key.name ? { signerName: key.name } : {}) };
  if (opts.json) console.log(JSON.stringify(info));
  else console.log(`signed ${out} (${info.model} ${info.version}) with key ${key.name ?? ''} ${info.signer}`);
}

export async function deployInspectCommand(bundlePath: string, opts: { keyDir?: string; json?: boolean }, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const bundle = await readBundle(await readBundleFile(bundlePath, config), limitsOf(config));
  const m = bundle.manifest;
  const trust = await TrustStore.open(new FsStorage(opts.keyDir ?? keyDirOf(config), 0o600, KEY_FILE_MAX_BYTES), config.security.trustedKeysFile);
  let verified: { ok: true; signer: { name: string; fingerprint: string } } | { ok: false; reason: string; detail: string };
  try {
    verified = { ok: true, signer: verifyBundle(bundle, trust, nativeVerify) };
  } catch (e) {
    if (!(e instanceof DeployError)) throw e;
    verified = { ok: false, reason: e.reason, detail: e.message };
  }
  const claimed = bundle.signature ? fingerprint(parseSignature(bundle.signature).publicKey) : undefined;
  if (opts.json) {
    console.log(JSON.stringify({ manifest: m, signedBy: claimed ?? null, verified }));
  } else {
    const io = (specs: typeof m.model.inputs) => specs.map((s) => `${s.name} ${s.type}[${s.dims.join(', ')}]`).join('; ');
    console.log(formatTable(['field', 'value'], [
      ['model', `${m.model.id} ${m.model.version}`],
      ['inputs', io(m.model.inputs)],
      ['outputs', io(m.model.outputs)],
      ['labels', m.labels.length ? `${m.labels.length}: ${m.labels.slice(0, 5).join(', ')}${m.labels.length > 5 ? ', …' : ''}` : '—'],
      ['profiles', m.profiles.join(', ') || 'any'],
      ['min runtime', m.minRuntime],
      ['guard', `agreement ≥ ${m.guard.minAgreement}, cosine ≥ ${m.guard.minCosine}`],
      ['canaries', `${m.canary.count} × [${m.canary.inputShape.join(', ')}] → [${m.canary.outputShape.join(', ')}]`],
      ...Object.entries(m.parts).map(([name, p]) => [name, `${p.size} bytes, sha256 ${p.sha256}`]),
      ['created', m.created],
      ['signed by', claimed ?? 'unsigned'],
      ['verified', verified.ok ? `yes: key '${verified.signer.name}' (${verified.signer.fingerprint}) of the trust store, every part's hash matches` : `NO: ${verified.reason}: ${verified.detail}`],
    ]));
  }
  if (!verified.ok) process.exitCode = 1;
}

export interface InstallCliOptions {
  stateDir?: string;
  model?: string[];
  data?: string;
  allowDowngrade?: boolean;
  json?: boolean;
}

/**
 * Installs into the state directory of a device that is not running: the same verification,
 * staging, self-test on the configured placement and switch as a pushed bundle; the daemon serves
 * it from its next start.
 */
export async function deployInstallCommand(bundlePath: string, opts: InstallCliOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const bytes = await readBundleFile(bundlePath, config);
  const stateDir = resolve(opts.stateDir ?? config.mqtt.stateDir);
  const paths = opts.model?.length ? opts.model : BUNDLED_MODELS.map((m) => join(packageRoot, m));
  const given = new Map(await Promise.all(paths.map(async (p) => [modelIdOf(p), await readModel(p, config)] as const)));
  const registry = createRegistry(config);
  const statuses: DeployStatus[] = [];
  const publisher = {
    publish: async (kind: string, body: unknown) => {
      if (kind !== 'deploy/status') return;
      const s = body as DeployStatus;
      statuses.push(s);
      if (!opts.json) console.error(`${s.state}${s.reason ? `: ${s.reason}: ${s.detail}` : ''}`);
    },
  };
  try {
    const deployment = await openDeployment({ config, stateDir, publisher }, given);
    const device = await Device.create({
      config, registry, models: deployment.models, versions: deployment.versions, source: await DatasetSource.open(opts.data ?? join(packageRoot, BUNDLED_DATA)),
      publisher, storage: new FsStorage(join(stateDir, 'device')), rateHz: 0, telemetryIntervalMs: config.mqtt.telemetryIntervalMs,
    });
    try {
      deployment.deployer.attach(deviceHost(device, given, deployment.deployer, { runtimeVersion, profile: config.analog.profile }));
      const status = await deployment.deployer.install(bytes, { id: `local-${randomBytes(4).toString('hex')}`, allowDowngrade: opts.allowDowngrade });
      if (opts.json) console.log(JSON.stringify(status));
      else if (status.state === 'active') console.log(`installed ${status.model} ${status.version} (self-test on ${status.selfTest?.servedBy}: agreement ${status.selfTest?.agreement}, cosine ${status.selfTest?.cosine}); active: ${JSON.stringify(status.active)}`);
      else console.log(`refused: ${status.reason}: ${status.detail}`);
      if (status.state !== 'active') process.exitCode = 2;
    } finally {
      await device.stop();
    }
  } finally {
    await registry.dispose();
  }
}

/** What push and rollout share: the broker, the operator's key, how the bundle travels. */
interface TransferCliOptions {
  key: string;
  url?: string;
  fleet?: string;
  prefix?: string;
  protocol?: number;
  downloadUrl?: string;
  chunkSize: number;
  allowDowngrade?: boolean;
  discover: number;
  timeout: number;
  json?: boolean;
}

export interface PushCliOptions extends TransferCliOptions {
  to: string;
}

/** `--to`: device ids, or every online device of the fleet (`fleet`) or of one group (`group:<name>`). */
type PushTargets = { devices: string[] } | { group?: string };

function parsePushTargets(to: string): PushTargets {
  if (to.trim() === 'fleet') return {};
  const group = /^group:(.*)$/.exec(to.trim());
  if (group) {
    if (!/^[A-Za-z0-9_.-]+$/.test(group[1]!)) throw new Error(`--to ${to}: a group name is letters, digits, '_', '.', '-'`);
    return { group: group[1]! };
  }
  const devices = to.split(',').map((d) => d.trim()).filter(Boolean);
  if (!devices.length) throw new Error('--to names no device');
  return { devices };
}

/** Pushes a signed bundle to devices (named, or found from their births) at once, a progress bar each. */
export async function deployPushCommand(bundlePath: string, opts: PushCliOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const bytes = await readBundleFile(bundlePath, config);
  const bundle = await readBundle(bytes, limitsOf(config));
  if (!bundle.signature) throw new Error(`${bundlePath} is not signed (edgerun deploy sign ${bundlePath} --key …)`);
  const signer = nativeSigner(await readKeyFile(opts.key));
  const targets = parsePushTargets(opts.to);
  const id = `${bundle.manifest.model.id}-${bundle.manifest.model.version.replace(/[^A-Za-z0-9_.-]/g, '_')}-${randomBytes(3).toString('hex')}`;
  const mqtt = await connectDeployClient(config, opts);
  let devices: string[];
  let results: (DeployStatus | Error)[];
  try {
    if ('devices' in targets) devices = targets.devices;
    else {
      const fleet = opts.fleet ?? config.device.fleet;
      devices = selectTargets(await retainedBirths(mqtt, opts.prefix ?? config.mqtt.prefix, fleet, opts.discover * 1000), fleet, targets.group).map((t) => t.device);
      if (!devices.length) throw new Error(`no online device in fleet '${fleet}'${targets.group !== undefined ? ` group '${targets.group}'` : ''} answered within ${opts.discover} s`);
      if (!opts.json) console.error(`--to ${opts.to}: ${devices.join(', ')}`);
    }
    results = await pushOver(mqtt, { config, bytes, devices, id, signer, opts });
  } finally {
    await mqtt.end();
  }
  const rows = devices.map((d, i) => {
    const r = results[i]!;
    return r instanceof Error ? [d, 'error', '—', r.message] : [d, r.state, `${r.model ?? ''} ${r.version ?? ''}`.trim() || '—', r.reason ? `${r.reason}: ${r.detail}` : r.selfTest ? `self-test ${r.selfTest.servedBy}: agreement ${r.selfTest.agreement}, cosine ${r.selfTest.cosine}` : r.detail ?? ''];
  });
  if (opts.json) for (const [i, d] of devices.entries()) console.log(JSON.stringify({ device: d, ...(results[i] instanceof Error ? { state: 'error', error: (results[i] as Error).message } : results[i]) }));
  else console.log(formatTable(['device', 'state', 'version', 'detail'], rows));
  if (results.some((r) => r instanceof Error || r.state !== 'active')) process.exitCode = 1;
}

/** A connected operator client on the broker (--url, else the config's), or a clear error. */
async function connectDeployClient(config: Config, opts: { url?: string; protocol?: number }): Promise<MqttClient> {
  let refused!: (reason: string) => void;
  const mqtt = toolClient(config, {
    url: opts.url, clientId: `edgerun-deploy-${randomBytes(6).toString('hex')}`, clean: true, protocol: opts.protocol,
    onRefused: (reason) => refused(reason),
  });
  const connected = new Promise<void>((resolve, reject) => {
    mqtt.onConnect(() => resolve());
    refused = (reason) => reject(new Error(`the broker refused the connection: ${reason}`));
  });
  mqtt.connect();
  try {
    await Promise.race([connected, new Promise((_, reject) => setTimeout(() => reject(new Error('could not connect to the broker within 10 s')), 10_000).unref())]);
  } catch (e) {
    await mqtt.end();
    throw e;
  }
  return mqtt;
}

/** Pushes to the devices at once over a connected client; an Error in place of a device that went silent. */
async function pushOver(mqtt: MqttClient, a: { config: Config; bytes: Uint8Array; devices: string[]; id: string; signer: ReturnType<typeof nativeSigner>; opts: TransferCliOptions }): Promise<(DeployStatus | Error)[]> {
  const { config, opts } = a;
  const bars = process.stderr.isTTY && !opts.json
    ? new cliProgress.MultiBar({ format: '{device} [{bar}] {percentage}% {value}/{total} bytes {state}', hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  try {
    return await Promise.all(a.devices.map(async (device) => {
      const bar = bars?.create(a.bytes.byteLength, 0, { device, state: 'sent' });
      try {
        return await pushBundle({
          mqtt, address: { prefix: opts.prefix ?? config.mqtt.prefix, fleet: opts.fleet ?? config.device.fleet, device }, bytes: a.bytes, id: a.id, signer: a.signer,
          chunkSize: opts.chunkSize, ...(opts.downloadUrl !== undefined ? { url: opts.downloadUrl } : {}), allowDowngrade: opts.allowDowngrade, encoding: config.mqtt.encoding,
          silenceMs: opts.timeout * 1000, verify: nativeVerify,
          onStatus: (s) => {
            bar?.update(s.transfer?.received ?? (s.state === 'receiving' ? 0 : a.bytes.byteLength), { state: s.state });
            if (!bars && !opts.json) console.error(`${device}: ${s.state}${s.transfer ? ` ${s.transfer.received}/${s.transfer.size} bytes` : ''}`);
          },
        });
      } catch (e) {
        return e as Error;
      }
    }));
  } finally {
    bars?.stop();
  }
}

export interface RolloutCliOptions extends TransferCliOptions {
  fleet: string;
  group?: string;
  waves: string;
  abortFailureRate: number;
  rollbackFailed?: boolean;
  report?: string;
}

/**
 * Rolls a signed bundle out to a fleet (or one group) in cumulative waves: the targets come from
 * the devices' retained births, each wave is pushed and awaited, and a wave whose failure rate
 * exceeds the threshold halts the rollout (with --rollback-failed its activated devices roll back).
 */
export async function deployRolloutCommand(bundlePath: string, opts: RolloutCliOptions, global: GlobalOptions): Promise<void> {
  const percentages = parseWaves(opts.waves);
  const config = await loadConfig(global);
  const bytes = await readBundleFile(bundlePath, config);
  const bundle = await readBundle(bytes, limitsOf(config));
  if (!bundle.signature) throw new Error(`${bundlePath} is not signed (edgerun deploy sign ${bundlePath} --key …)`);
  const key = await readKeyFile(opts.key);
  const signer = nativeSigner(key);
  const { id: model, version } = bundle.manifest.model;
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const id = `${model}-${version.replace(/[^A-Za-z0-9_.-]/g, '_')}-${randomBytes(3).toString('hex')}`;
  const log = (line: string): void => { if (!opts.json) console.error(line); };

  const mqtt = await connectDeployClient(config, opts);
  let rollout: Rollout;
  try {
    const targets = selectTargets(await retainedBirths(mqtt, prefix, opts.fleet, opts.discover * 1000), opts.fleet, opts.group);
    if (!targets.length) throw new Error(`no online device in fleet '${opts.fleet}'${opts.group !== undefined ? ` group '${opts.group}'` : ''} answered within ${opts.discover} s`);
    rollout = new Rollout({ model, version, fleet: opts.fleet, ...(opts.group !== undefined ? { group: opts.group } : {}), targets, percentages, abortFailureRate: opts.abortFailureRate });
    for (const [w, wave] of rollout.waves.entries()) {
      const devices = wave.map((t) => t.device);
      log(`wave ${w + 1}/${rollout.waves.length}: ${devices.join(', ')}`);
      const results = await pushOver(mqtt, { config, bytes, devices, id, signer, opts });
      for (const [i, device] of devices.entries()) {
        const r = results[i]!;
        if (r instanceof Error) rollout.record(w, device, 'error', { reason: r.message });
        else rollout.record(w, device, r.state === 'active' ? 'active' : r.state === 'rolled-back' ? 'rolled-back' : 'failed', {
          ...(r.active[model] !== undefined ? { serving: r.active[model] } : {}),
          ...(r.reason ? { reason: `${r.reason}: ${r.detail ?? ''}` } : {}),
        });
      }
      if (rollout.finishWave(w)) continue;
      log(`wave ${w + 1} failed beyond --abort-failure-rate ${opts.abortFailureRate}: rollout halted`);
      if (opts.rollbackFailed) {
        await Promise.all(rollout.activated(w).map(async (device) => {
          try {
            const r = await sendRollback(mqtt, { prefix, fleet: opts.fleet, device }, model, signer, config.mqtt.encoding, opts.timeout * 1000);
            rollout.rolledBack(device, r.active?.[model], true);
          } catch (e) {
            rollout.rolledBack(device, undefined, false, (e as Error).message);
          }
        }));
      }
      break;
    }
  } finally {
    await mqtt.end();
  }
  const report = rollout.report();
  if (opts.report !== undefined) await writeFileAtomic(opts.report, new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`));
  if (opts.json) console.log(JSON.stringify(report));
  else {
    console.log(formatTable(['device', 'group', 'wave', 'outcome', 'serving', 'reason'], report.devices.map((d) => [
      d.device, d.group, d.wave === undefined ? '—' : String(d.wave), `${d.outcome}${d.rolledBack ? ', rolled back' : ''}`, d.serving ?? 'as started', d.reason ?? '',
    ])));
    console.log(report.halted ? `rollout of ${model} ${version} HALTED at wave ${report.waves.length} of ${rollout.waves.length}` : `rollout of ${model} ${version} done: ${report.devices.length} devices in ${report.waves.length} waves`);
  }
  if (report.halted) process.exitCode = 1;
}

/** The retained births under `<prefix>/<fleet>/+/status`, collected for a bounded time. */
async function retainedBirths(mqtt: MqttClient, prefix: string, fleet: string, waitMs: number): Promise<unknown[]> {
  const births = new Map<string, unknown>();
  const filter = fleetFilter(prefix, fleet, 'status');
  const off = mqtt.onMessage((m) => {
    if (!m.topic.endsWith('/status') || !m.topic.startsWith(`${prefix}/${fleet}/`)) return;
    try {
      births.set(m.topic, decodeMessage(m.payload, 1 << 20, nativeVerify).message.body);
    } catch { /* a malformed or forged birth: not a target */ }
  });
  try {
    await mqtt.subscribe(filter, 1);
    await new Promise((r) => setTimeout(r, waitMs));
  } finally {
    off();
    await mqtt.unsubscribe(filter).catch(() => undefined);
  }
  return [...births.values()];
}

/** Sends a signed `rollback` of the model and waits for the device's command result. */
async function sendRollback(mqtt: MqttClient, address: DeviceAddress, model: string, signer: SigningKey, encoding: Encoding, timeoutMs: number): Promise<{ active?: Record<string, string> }> {
  const nonce = randomBytes(16).toString('hex');
  const events = deviceTopic(address, 'events');
  let off: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to rollback within ${timeoutMs / 1000} s`)), timeoutMs);
      off = mqtt.onMessage((m) => {
        if (m.topic !== events) return;
        try {
          const body = decodeMessage(m.payload, 1 << 20, nativeVerify).message.body as Record<string, unknown>;
          if (body.nonce !== nonce) return;
          if (body.type === 'command-result' && body.ok === true) resolve((body.result ?? {}) as { active?: Record<string, string> });
          else if (body.type === 'command-result') reject(new Error(String(body.error)));
          else if (body.type === 'command-rejected') reject(new Error(`rejected: ${String(body.reason)}`));
        } catch { /* not ours */ }
      });
      void (async () => {
        await mqtt.subscribe(events, 1);
        await mqtt.publish(commandTopic(address, 'rollback'), buildCommand({ device: address.device, name: 'rollback', args: { model }, signer, nonce, encoding }), { qos: 1 });
      })().catch(reject);
    });
  } finally {
    clearTimeout(timer);
    off?.();
    await mqtt.unsubscribe(events).catch(() => undefined);
  }
}
