/**
 * Births of `edgerun serve` on a real Mosquitto, counted by a foreign client: one per connection
 * (DESIGN.md's MQTT contract: the retained birth on every connect), complete from the first (the
 * versions its models serve), and sent once the device listens for commands — a command sent on
 * seeing the birth is answered. A broker restart gives the re-birth, under the same session and
 * a new will.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { buildCommand } from '../../runtime/telemetry/build-command.js';
import { decodeMessage, type Message } from '../../runtime/telemetry/envelope.js';
import { TrustStore } from '../../runtime/telemetry/keys.js';
import { startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const root = 'edgerun/births/dev-b';
const operator = nacl.sign.keyPair();
let dir: string;
let broker: Mosquitto;
let watcher: MqttClient;
let device: EdgerunProcess | undefined;
const heard: { topic: string; m: Message<Body> }[] = [];
const of = (kind: string): Message<Body>[] => heard.filter((h) => h.topic === `${root}/${kind}`).map((h) => h.m);
const births = (): Message<Body>[] => of('status').filter((m) => m.body.state === 'online');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-births-'));
  const keys = new FsStorage(join(dir, 'keys'), 0o600);
  await (await TrustStore.open(keys)).add('operator', operator.publicKey);
  await keys.close();
});

afterAll(async () => {
  device?.proc.kill('SIGKILL');
  await device?.exit;
  await watcher?.end();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describeMosquitto('births of a device', () => {
  it('one birth at start, complete, sent once commands are heard; one re-birth after the broker restarts', { timeout: 180_000 }, async () => {
    broker = await Mosquitto.start({ persistence: false });
    watcher = new MqttClient({ url: broker.url, clientId: 'births-watch', clean: true });
    watcher.onMessage((m) => { try { heard.push({ topic: m.topic, m: decodeMessage<Body>(m.payload).message }); } catch { /* not a message */ } });
    await watcher.subscribe(`${root}/status`, 1);
    await watcher.subscribe(`${root}/results`, 1);
    await watcher.subscribe(`${root}/events`, 1);
    const sender = new MqttClient({ url: broker.url, clientId: 'births-sender', clean: true });
    // The moment the birth arrives, a command goes out: the device must already listen.
    let nonce: string | undefined;
    sender.onMessage(() => {
      if (nonce) return;
      nonce = `birth-${Date.now()}`;
      void sender.publish(`${root}/cmd/pause-stream`, buildCommand({ device: 'dev-b', name: 'pause-stream', args: { stream: 'mlp' }, signer: operator, nonce }), { qos: 1 });
    });
    await sender.subscribe(`${root}/status`, 1);
    const up = Promise.all([new Promise<void>((r) => watcher.onConnect(() => r())), new Promise<void>((r) => sender.onConnect(() => r()))]);
    watcher.connect();
    sender.connect();
    await up;

    device = startEdgerun(['serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '20', '--state-dir', join(dir, 'state')], {
      EDGERUN_DEVICE__ID: 'dev-b', EDGERUN_DEVICE__FLEET: 'births', EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'),
      EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_POWER__SENSOR: 'none', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000',
    });
    const ctx = (): string => `${device!.log()}\nstatus: ${JSON.stringify(of('status'))}`;
    const answer = await until('the answer to the command sent on the birth', () => of('events').find((e) => e.body.nonce === nonce && e.body.nonce !== undefined), 90_000, ctx);
    expect(answer.body, ctx()).toMatchObject({ type: 'command-result', command: 'pause-stream', ok: true });
    await sender.end();
    // The stream is paused by now: resume it and let results flow for a while, then count.
    const c = new MqttClient({ url: broker.url, clientId: 'births-resume', clean: true });
    const cUp = new Promise<void>((r) => c.onConnect(() => r()));
    c.connect();
    await cUp;
    await c.publish(`${root}/cmd/resume-stream`, buildCommand({ device: 'dev-b', name: 'resume-stream', args: { stream: 'mlp' }, signer: operator }), { qos: 1 });
    await c.end();
    await until('40 results', () => of('results').length >= 40, 60_000, ctx);
    expect(births(), ctx()).toHaveLength(1);
    const first = births()[0]!;
    expect(first.body).toMatchObject({ device: 'dev-b', fleet: 'births', models: ['mlp'], modelVersions: {} });
    expect(first.body.willSeq).toBe(first.seq + 1);

    // A broker restart: the device reconnects and is born again, once.
    const before = of('results').length;
    await broker.restart();
    await until('results after the restart', () => of('results').length >= before + 40, 90_000, ctx);
    expect(births(), ctx()).toHaveLength(2);
    const second = births()[1]!;
    expect(second.session).toBe(first.session);
    expect(second.seq).toBeGreaterThan(first.seq);
    expect(second.body.willSeq).toBe(second.seq + 1);

    device.proc.kill('SIGTERM');
    expect((await device.exit).code).toBe(0);
    await until('the shutdown status', () => of('status').find((m) => m.body.state === 'offline'), 10_000, ctx);
    expect(births()).toHaveLength(2);

    // Started again under the same client id: the broker still holds the session the last run left
    // (without the subscriptions it removed on its way out); a command sent on the new birth is heard.
    const again = new MqttClient({ url: broker.url, clientId: 'births-sender-2', clean: true });
    let nonce2: string | undefined;
    again.onMessage((m) => {
      if (nonce2 || decodeMessage<Body>(m.payload).message.body.state !== 'online' || m.retain) return;
      nonce2 = `again-${Date.now()}`;
      void again.publish(`${root}/cmd/pause-stream`, buildCommand({ device: 'dev-b', name: 'pause-stream', args: { stream: 'mlp' }, signer: operator, nonce: nonce2 }), { qos: 1 });
    });
    await again.subscribe(`${root}/status`, 1);
    const againUp = new Promise<void>((r) => again.onConnect(() => r()));
    again.connect();
    await againUp;
    device = startEdgerun(['serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '20', '--state-dir', join(dir, 'state')], {
      EDGERUN_DEVICE__ID: 'dev-b', EDGERUN_DEVICE__FLEET: 'births', EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'),
      EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_POWER__SENSOR: 'none', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000',
    });
    const answer2 = await until('the answer to the command sent on the next run\'s birth', () => of('events').find((e) => e.body.nonce === nonce2 && nonce2 !== undefined), 90_000, ctx);
    expect(answer2.body).toMatchObject({ type: 'command-result', command: 'pause-stream', ok: true });
    await again.end();
    expect(births()).toHaveLength(3);
  });
});
