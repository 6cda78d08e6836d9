/**
 * Chunks lost on the way, with neither end restarting, on real parts (a real Mosquitto, `edgerun
 * serve` as a real process, the real pusher): the broker restarts mid-transfer and forgets the
 * device's session with the chunks it held; a chunk arrives damaged; the pusher loses chunks in the
 * middle of a window. Each time the device asks again for the window it needs (`transfer.resend`
 * on deploy/status) and the deployment completes; nothing arrives twice in the installed bundle.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import type { DeployStatus } from '../../runtime/deploy/installer.js';
import { pushBundle } from '../../runtime/deploy/pusher.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, TrustStore } from '../../runtime/telemetry/keys.js';
import type { MqttPort } from '../../runtime/telemetry/mqtt-port.js';
import { startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';
import { signedBundle } from './signed-bundle.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const FLEET = 'tl';
const DEVICE = 'lossy';
const operator = nacl.sign.keyPair();
const limits = { maxBytes: 64 << 20, maxModelBytes: 32 << 20 };
const ROOT = `edgerun/${FLEET}/${DEVICE}`;

let dir: string;
let broker: Mosquitto;
let watcher: mqtt.MqttClient;
let device: EdgerunProcess;
let digital: DigitalBackend;
const got: { topic: string; body: Body }[] = [];
const ctx = (): string => `--- device log ---\n${device?.log().slice(-4000)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-transfer-loss-'));
  const keys = new FsStorage(join(dir, 'keys'), 0o600);
  await (await TrustStore.open(keys)).add('operator', operator.publicKey);
  await keys.close();
  writeFileSync(join(dir, 'operator.key'), encodeKeyFile(operator, 'operator'), { mode: 0o600 });
  digital = new DigitalBackend();
  // No persistence: a restart forgets every session and every queued chunk.
  broker = await Mosquitto.start({ persistence: false });
}, 60_000);

afterAll(async () => {
  device?.proc.kill('SIGKILL');
  await device?.exit;
  await watcher?.endAsync(true);
  await digital?.dispose();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function watch(): Promise<void> {
  watcher = await mqtt.connectAsync(broker.url, { clientId: `watch-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 500 });
  watcher.on('message', (topic, payload) => {
    try { got.push({ topic, body: decodeMessage<Body>(payload).message.body }); } catch { /* chunks are not messages */ }
  });
  // Re-subscribed after the broker restart (its session is gone too).
  watcher.on('connect', () => { void watcher.subscribeAsync([`${ROOT}/results`, `${ROOT}/status`, `${ROOT}/deploy/status`], { qos: 1 }); });
  await watcher.subscribeAsync([`${ROOT}/results`, `${ROOT}/status`, `${ROOT}/deploy/status`], { qos: 1 });
}

/** The real pusher on its own connection; `onChunk` may drop (undefined) or replace a chunk's payload on its way. */
/** Every status the pusher saw, per deployment. */
const seen = new Map<string, DeployStatus[]>();
const resends = (id: string): number => (seen.get(id) ?? []).filter((s) => s.transfer?.resend === true).length;

async function push(version: string, onChunk: (index: number, payload: Uint8Array) => Promise<Uint8Array | undefined>): Promise<DeployStatus> {
  const { signed } = await signedBundle({ model: 'cnn', version, canaryCount: 8, labels: [], profiles: [], key: operator, digital, limits });
  const c = new MqttClient({ url: broker.url, clientId: `pusher-${version}`, clean: true, reconnect: { initialMs: 100, maxMs: 500 } });
  const connected = new Promise<void>((r) => c.onConnect(() => r()));
  c.connect();
  await connected;
  const port: MqttPort = {
    get connected() { return c.connected; },
    get protocolVersion() { return c.protocolVersion; },
    connect: () => c.connect(), setWill: (w) => c.setWill(w), subscribe: (f, q) => c.subscribe(f, q), unsubscribe: (f) => c.unsubscribe(f),
    onMessage: (h) => c.onMessage(h), onConnect: (h) => c.onConnect(h), onClose: (h) => c.onClose(h), end: () => c.end(),
    publish: async (topic, payload, opts) => {
      if (!topic.includes('/deploy/chunk/')) return c.publish(topic, payload, opts);
      const out = await onChunk(new DataView(payload.buffer, payload.byteOffset).getUint32(0, false), payload);
      if (out) await c.publish(topic, out, opts);
    },
  };
  const id = `tl-${version.replace(/\./g, '-')}`;
  seen.set(id, []);
  try {
    return await pushBundle({
      mqtt: port, address: { prefix: 'edgerun', fleet: FLEET, device: DEVICE }, bytes: signed, id, signer: operator, chunkSize: 8 * 1024, silenceMs: 90_000,
      onStatus: (s) => seen.get(id)!.push(s),
    });
  } finally {
    await c.end();
  }
}

describeMosquitto('chunks lost during a transfer', () => {
  it('the device asks again after a broker restart, a damaged chunk and a gap; each deployment completes', { timeout: 300_000 }, async () => {
    await watch();
    device = startEdgerun(['serve', '--url', broker.url, '--model', 'models/cnn.onnx', '--rate', '10', '--state-dir', join(dir, 'state')], {
      EDGERUN_DEVICE__ID: DEVICE, EDGERUN_DEVICE__FLEET: FLEET, EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'), EDGERUN_PLACEMENT__DEFAULT: 'digital',
      EDGERUN_POWER__SENSOR: 'none', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000',
      // Without a resend request the transfer would stall and fail after 8 s.
      EDGERUN_DEPLOY__TRANSFER_TIMEOUT_MS: '8000',
    });
    await until('the device serving', () => got.find((g) => g.topic === `${ROOT}/results`), 120_000, ctx);

    // 1. The broker restarts while chunk 5 is on its way; what it held for the device is gone.
    let restarted = false;
    const first = await push('1.1.0', async (i, p) => {
      if (i !== 5 || restarted) return p;
      restarted = true;
      await broker.restart();
      return undefined;
    });
    expect(restarted).toBe(true);
    expect(first, ctx()).toMatchObject({ state: 'active', version: '1.1.0' });
    expect(resends(first.id)).toBeGreaterThan(0);

    // 2. Chunk 3 arrives damaged once (its bytes altered, its hash not): refused on arrival, sent again.
    let damaged = 0;
    const second = await push('1.2.0', async (i, p) => {
      if (i !== 3 || damaged++) return p;
      const bad = new Uint8Array(p);
      bad[bad.length - 1]! ^= 0xff;
      return bad;
    });
    expect(damaged).toBeGreaterThan(1); // chunk 3 was sent again
    expect(second, ctx()).toMatchObject({ state: 'active', version: '1.2.0' });
    expect(device.log()).toMatch(/chunk 3 does not match its sha256; asking for chunk 3 again/);
    expect(resends(second.id)).toBeGreaterThan(0);

    // 3. Chunks 2 and 3 are lost once in the middle of the first window: a gap.
    const dropped = new Set<number>();
    const third = await push('1.3.0', async (i, p) => {
      if ((i === 2 || i === 3) && !dropped.has(i)) {
        dropped.add(i);
        return undefined;
      }
      return p;
    });
    expect(third, ctx()).toMatchObject({ state: 'active', version: '1.3.0', active: { cnn: '1.3.0' } });
    expect(resends(third.id)).toBeGreaterThan(0);
    const mark = got.length;
    await until('a result of 1.3.0', () => got.slice(mark).find((g) => g.topic === `${ROOT}/results` && g.body.modelVersion === '1.3.0'), 60_000, ctx);
  });
});
