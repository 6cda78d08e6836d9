/** What every command needs: the resolved config, the backend registry and model loading. */
import { join } from 'node:path';
import { BackendRegistry, type BackendFactory } from '../../runtime/backend.js';
import { resolveConfig, type Config } from '../../runtime/config.js';
import { loadModel, OLDEST_GUARANTEED_OPSET, type LoadedModel } from '../../runtime/model/load.js';
import { ModelError } from '../../runtime/model/errors.js';
import { DigitalBackend, DIGITAL_BACKEND, sessionRefusal } from '../../drivers/digital/ort-backend.js';
import { FILE_LIMITS, readFileLimited, readTextLimited } from '../../drivers/storage/read-file.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { loadProfile, type DeepPartial, type DeviceProfile } from '../../drivers/crossbar/profile.js';
import { RemoteCrossbarClient } from '../../drivers/remote/client.js';
import { unixSocketTransport } from '../../drivers/remote/transport.js';
import type { CrossbarDriver } from '../../runtime/accelerator.js';
import { MqttClient, type MqttClientOptions } from '../../drivers/mqtt/mqtt-client.js';
import { KEY_FILE_MAX_BYTES, parseKeyFile, type NamedKey } from '../../runtime/telemetry/keys.js';

export interface GlobalOptions {
  config?: string;
  threads?: number;
}

/** Per-command options that select the analog device. */
export interface DeviceOptions {
  profile?: string;
  seed?: number;
  periphery?: 'on' | 'off';
}

export async function loadConfig(opts: GlobalOptions & DeviceOptions, flags: Record<string, unknown> = {}): Promise<Config> {
  const file = opts.config ? { path: opts.config, text: await readTextLimited(opts.config, FILE_LIMITS.small, 'config file') } : undefined;
  const cliFlags: Record<string, unknown> = { ...flags };
  if (opts.threads !== undefined) cliFlags.digital = { threads: opts.threads };
  if (opts.profile !== undefined || opts.seed !== undefined || opts.periphery !== undefined) {
    cliFlags.analog = { profile: opts.profile, seed: opts.seed, periphery: opts.periphery === undefined ? undefined : opts.periphery === 'on' };
  }
  return resolveConfig({ file, env: process.env, flags: cliFlags });
}

/**
 * Digital always; `analog` = the hybrid backend on the accelerator: the process behind
 * config.remote.socket when set (drivers/remote), else the in-process crossbar emulator of
 * config.analog. `digital` replaces the device's own onnxruntime backend (a fleet worker's devices
 * share one: runtime/shared-backend.ts).
 */
export function createRegistry(config: Config, deviceOverrides: DeepPartial<DeviceProfile> = {}, digital: BackendFactory = () => new DigitalBackend(config.digital)): BackendRegistry {
  const registry = new BackendRegistry();
  registry.register(DIGITAL_BACKEND, digital, 0);
  registry.register('analog', async () => new AnalogBackend({
    digital: await registry.get(DIGITAL_BACKEND),
    driver: await createAcceleratorDriver(config, deviceOverrides),
    fallbackOversized: config.analog.fallbackOversized,
    periphery: config.analog.periphery,
    ownsDriver: true,
  }), 10);
  return registry;
}

async function createAcceleratorDriver(config: Config, deviceOverrides: DeepPartial<DeviceProfile>): Promise<CrossbarDriver> {
  const { socket, timeoutMs } = config.remote;
  if (socket === undefined) return new CrossbarEmulator(loadProfile(config.analog.profile, deviceOverrides), { seed: config.analog.seed, lean: config.analog.lean });
  return RemoteCrossbarClient.connect(unixSocketTransport(socket), { timeoutMs });
}

/** Reads and validates a model; one stamped with an opset older than onnxruntime guarantees is asked to onnxruntime first. */
export async function readModel(path: string, config: Config, warn = (message: string): void => { process.stderr.write(`edgerun: warning: ${message}\n`); }): Promise<LoadedModel> {
  const maxBytes = config.model.maxSizeMiB * 1024 * 1024;
  const model = loadModel(await readFileLimited(path, maxBytes, 'model'), { source: path, maxBytes });
  if (model.opset < OLDEST_GUARANTEED_OPSET) {
    const old = `operator set ai.onnx version ${model.opset} is older than ${OLDEST_GUARANTEED_OPSET}, the oldest onnxruntime guarantees`;
    const refusal = await sessionRefusal(model.bytes, config.digital);
    if (refusal !== undefined) throw new ModelError('UNKNOWN_OPSET', `${path}: ${old}, and onnxruntime cannot run this model: ${refusal}`);
    warn(`${path}: ${old}; onnxruntime loads this model, so it runs as it is`);
  }
  return model;
}

/** An operator's (or device's) ed25519 key file, read capped and checked (the public key is the secret key's). */
export async function readKeyFile(path: string): Promise<NamedKey> {
  return parseKeyFile(await readFileLimited(path, KEY_FILE_MAX_BYTES, 'key file'), `key file ${path}`);
}

/** security.keyDir, else `keys` in the device's state dir (--state-dir, else config mqtt.stateDir). */
export function keyDirOf(config: Config, stateDir: string = config.mqtt.stateDir): string {
  return config.security.keyDir ?? join(stateDir, 'keys');
}

type BrokerSettings = 'username' | 'password' | 'ca' | 'cert' | 'key';

/** An MQTT client with the broker settings of config.mqtt (credentials, TLS files, protocol version unless given). */
export function brokerClient(config: Config, o: Omit<MqttClientOptions, BrokerSettings>): MqttClient {
  const m = config.mqtt;
  return new MqttClient({ ...o, username: m.username, password: m.password, ca: m.ca, cert: m.cert, key: m.key, protocolVersion: o.protocolVersion ?? m.protocolVersion });
}
