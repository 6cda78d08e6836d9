/**
 * What the pusher reports when the device's command listener refuses the signed `deploy` command:
 * the listener's own reason (here `stale`), not a generic one; and a copy of the command delivered
 * twice (a QoS 1 redelivery, refused as `replayed`) does not end a deployment the first copy started.
 * Real parts: a real Mosquitto, `edgerun serve` as a real process, the real pusher; the command is
 * changed on its way by a man in the middle holding the operator's key.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import type { DeployStatus } from '../../runtime/deploy/installer.js';
import { pushBundle } from '../../runtime/deploy/pusher.js';
import { buildCommand } from '../../runtime/telemetry/build-command.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { TrustStore } from '../../runtime/telemetry/keys.js';
import type { MqttPort } from '../../runtime/telemetry/mqtt-port.js';
import { startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';
import { signedBundle } from './signed-bundle.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const operator = nacl.sign.keyPair();
const address = { prefix: 'edgerun', fleet: 'pr', device: 'dev-r' };
let dir: string;
let broker: Mosquitto;
let device: EdgerunProcess;
let bundle: Uint8Array;
const heard: Body[] = [];

/** A pusher connection whose `deploy` command is replaced by what `change` makes of it (the rest passes as it is). */
async function port(change: (payload: Uint8Array) => Uint8Array[]): Promise<MqttPort & { end(): Promise<void> }> {
  const c = new MqttClient({ url: broker.url, clientId: `pusher-${Math.random().toString(16).slice(2)}`, clean: true });
  const up = new Promise<void>((r) => c.onConnect(() => r()));
  c.connect();
  await up;
  return {
    get connected() { return c.connected; },
    get protocolVersion() { return c.protocolVersion; },
    connect: () => c.connect(), setWill: (w) => c.setWill(w), subscribe: (f, q) => c.subscribe(f, q), unsubscribe: (f) => c.unsubscribe(f),
    onMessage: (h) => c.onMessage(h), onConnect: (h) => c.onConnect(h), onClose: (h) => c.onClose(h), end: () => c.end(),
    publish: async (topic, payload, opts) => {
      if (!topic.endsWith('/cmd/deploy')) return c.publish(topic, payload, opts);
      for (const p of change(payload)) await c.publish(topic, p, opts);
    },
  };
}

async function push(change: (payload: Uint8Array) => Uint8Array[], version: string): Promise<DeployStatus> {
  const p = await port(change);
  try {
    return await pushBundle({ mqtt: p, address, bytes: bundle, id: `r-${version}-${Date.now().toString(36)}`, signer: operator, chunkSize: 16 * 1024, silenceMs: 60_000 });
  } finally {
    await p.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-push-rejections-'));
  const keys = new FsStorage(join(dir, 'keys'), 0o600);
  await (await TrustStore.open(keys)).add('operator', operator.publicKey);
  await keys.close();
  const digital = new DigitalBackend();
  const limits = { maxBytes: 64 << 20, maxModelBytes: 32 << 20 };
  bundle = (await signedBundle({ model: 'mlp', version: '1.1.0', canaryCount: 8, labels: [], profiles: [], key: operator, digital, limits })).signed;
  await digital.dispose();
}, 120_000);

afterAll(async () => {
  device?.proc.kill('SIGKILL');
  await device?.exit;
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describeMosquitto('the pusher and the device\'s command listener', () => {
  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    const watcher = new MqttClient({ url: broker.url, clientId: 'watch', clean: true });
    watcher.onMessage((m) => { try { heard.push(decodeMessage<Body>(m.payload).message.body); } catch { /* not a message */ } });
    await watcher.subscribe(`edgerun/${address.fleet}/${address.device}/status`, 1);
    watcher.connect();
    device = startEdgerun(['serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '5', '--state-dir', join(dir, 'dev')], {
      EDGERUN_DEVICE__ID: address.device, EDGERUN_DEVICE__FLEET: address.fleet, EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'),
      EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_POWER__SENSOR: 'none', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000',
    });
    await until('the device online', () => heard.find((b) => b.state === 'online'), 90_000, device.log);
    await watcher.end();
  }, 120_000);

  it('a stale command: the pusher names the listener\'s reason', { timeout: 120_000 }, async () => {
    // The same command (its nonce too), signed with the operator's key but ten minutes old.
    const status = await push((payload) => {
      const m = decodeMessage<{ name: 'deploy'; args: Record<string, unknown>; nonce: string }>(payload).message;
      return [buildCommand({ device: m.device, name: 'deploy', args: m.body.args as never, nonce: m.body.nonce, signer: operator, ts: Date.now() - 10 * 60_000 })];
    }, 'stale');
    expect(status, device.log()).toMatchObject({ state: 'failed', reason: 'stale' });
    expect(status.detail).toMatch(/^the device rejected the deploy command: stale: timestamp \d+ ms in the past/);
  });

  it('a command delivered twice: the copy refused as replayed does not end the deployment the first one started', { timeout: 180_000 }, async () => {
    const status = await push((payload) => [payload, payload], 'twice');
    expect(status, device.log()).toMatchObject({ state: 'active', model: 'mlp', version: '1.1.0' });
    // The device did refuse the second copy.
    expect(device.log()).toMatch(/"type":"command-rejected","reason":"replayed"/);
  });
});
