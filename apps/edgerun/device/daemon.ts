/**
 * What every device daemon (`edgerun serve`, `edgerun detect`) sets up around its pipeline: the
 * broker connection (the embedded Aedes broker when no URL is configured), the reporter with its
 * durable outbox and optional signing, the power sensor that stands for the device, and the canary
 * set of the accuracy guard.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseDataset, type Dataset } from '../../../runtime/dataset.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { FILE_LIMITS, readFileLimited } from '../../../drivers/storage/read-file.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';
import type { MqttClient } from '../../../drivers/mqtt/mqtt-client.js';
import type { Config } from '../../../runtime/config.js';
import type { DeviceAddress } from '../../../runtime/telemetry/topics.js';
import { Reporter } from '../../../runtime/telemetry/reporter.js';
import { KEY_FILE_MAX_BYTES, KeyStore } from '../../../runtime/telemetry/keys.js';
import type { SigningKey } from '../../../runtime/telemetry/envelope.js';
import { nativeSigner } from '../../../drivers/crypto/ed25519.js';
import { detectSensors, primarySensor } from '../../../drivers/power/detect.js';
import type { PowerSensor } from '../../../runtime/power/sensor.js';
import { brokerClient, keyDirOf } from '../context.js';
import { packageRoot, version } from '../package-info.js';

export interface ReportingOptions {
  config: Config;
  /** The device's state directory: its keys live in <stateDir>/keys unless config security.keyDir says otherwise. */
  stateDir: string;
  /** Outbox journal directory. */
  outboxDir: string;
  /** Overrides config.mqtt.url; when neither is set an embedded broker is started. */
  url?: string;
  /** Overrides config.mqtt.protocolVersion (4 for an Aedes broker). */
  protocolVersion?: 4 | 5;
  /** How the outbox journal is appended (drivers/storage/fs-storage.ts; default 'async'). */
  appends?: 'async' | 'sync';
  /** Birth fields besides the runtime version and pid (e.g. models, camera). */
  birth: Record<string, unknown>;
  log: (line: string) => void;
}

export interface Reporting {
  reporter: Reporter;
  mqtt: MqttClient;
  address: DeviceAddress;
  /** The embedded broker, when this daemon started one. */
  broker?: EmbeddedBroker;
  url: string;
  /** Where the device key, trust store and replay state live. */
  keyDir: string;
  /**
   * Connects to the broker. The daemon calls it once its commands and deployments listen and its
   * birth is complete: the subscriptions go out before the birth, so a device announced online
   * hears the commands sent to it, and one birth announces it (reporter.ts).
   */
  connect(): void;
  /** Waits (bounded) for the outbox to be acknowledged, publishes status offline, disconnects, stops the embedded broker. */
  close(drainMs: number): Promise<void>;
}

export async function openReporting(o: ReportingOptions): Promise<Reporting> {
  const { config } = o;
  // State before the broker: a blocked state directory or a refused key file fails with nothing started.
  const outbox = new FsStorage(o.outboxDir, undefined, undefined, o.appends);
  const keyDir = keyDirOf(config, o.stateDir);
  let signer: SigningKey | undefined;
  // node:crypto signs ~100× faster than tweetnacl's pure JS: every result is signed.
  if (config.security.sign) signer = nativeSigner(await new KeyStore(new FsStorage(keyDir, 0o600, KEY_FILE_MAX_BYTES)).loadOrGenerate(config.security.keyFile, config.device.id));

  let broker: EmbeddedBroker | undefined;
  let url = o.url ?? config.mqtt.url;
  if (!url && o.protocolVersion === 5) throw new Error('MQTT 5 needs an external broker (--url or config mqtt.url): the embedded Aedes broker speaks MQTT 3.1.1 only');
  if (!url) {
    broker = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    url = broker.url;
  }
  const address: DeviceAddress = { prefix: config.mqtt.prefix, fleet: config.device.fleet, device: config.device.id };
  const mqtt = brokerClient(config, {
    url, clientId: `edgerun-${config.device.fleet}-${config.device.id}`,
    // The embedded Aedes broker speaks MQTT 3.1.1 only.
    ...(broker ? { protocolVersion: 4 } : o.protocolVersion !== undefined ? { protocolVersion: o.protocolVersion } : {}),
    onError: reportOnce(o.log, 'mqtt'),
  });
  let reporter: Reporter;
  try {
    reporter = await Reporter.open({
      mqtt, address, storage: outbox, config: config.mqtt, signer, connect: false,
      birth: { runtime: `edgerun ${version}`, group: config.device.group, ...o.birth, profile: config.analog.profile, pid: process.pid },
      onError: (e) => o.log(`reporter: ${e.message}`),
    });
  } catch (e) {
    // A refused outbox (a state file that is a directory or too large) must close the client and
    // the broker too, or their sockets keep the process alive after the error.
    await mqtt.end({ force: true });
    await broker?.close();
    await outbox.close();
    throw e;
  }
  return {
    reporter, mqtt, address, broker, url, keyDir,
    connect: () => mqtt.connect(),
    async close(drainMs) {
      await reporter.drain(drainMs).catch(() => undefined);
      await reporter.close();
      // The outbox's append handles are this daemon's: a fleet host stops devices in a living process.
      await outbox.close();
      await broker?.close();
    },
  };
}

/** Logs an error when it differs from the previous one: a reconnect loop says why once, not every few seconds. */
function reportOnce(log: (line: string) => void, what: string): (e: Error) => void {
  let last: string | undefined;
  return (e) => {
    if (e.message !== last) log(`${what}: ${e.message}`);
    last = e.message;
  };
}

/** config.power.sensor: 'none', 'auto' (battery, else board monitor, else RAPL) or a sensor id. */
export async function deviceSensor(config: Config): Promise<PowerSensor | undefined> {
  const want = config.power.sensor;
  if (want === 'none') return undefined;
  const sensors = await detectSensors(config.power.root, { thermal: false });
  if (want === 'auto') return primarySensor(sensors);
  const found = sensors.find((s) => s.describe().id === want);
  if (!found) throw new Error(`config power.sensor: no sensor '${want}' under ${config.power.root}; found: ${sensors.map((s) => s.describe().id).join(', ') || 'none'}`);
  return found;
}

/** The accuracy guard's canary set (config.guard), when the guard is on. */
export async function guardCanary(config: Config): Promise<Dataset | undefined> {
  if (!config.guard.enabled) return undefined;
  const file = existsSync(config.guard.canary) ? config.guard.canary : join(packageRoot, config.guard.canary);
  return parseDataset(await readFileLimited(file, FILE_LIMITS.binary, 'canary set'), file);
}
