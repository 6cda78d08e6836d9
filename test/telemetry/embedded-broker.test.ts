import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../drivers/mqtt/embedded-broker.js';
import { edgerun, repoRoot } from '../helpers/cli.js';

const connect = (url: string, clientId: string): Promise<mqtt.MqttClient> => new Promise((resolve, reject) => {
  const c = mqtt.connect(url, { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
  c.once('connect', () => resolve(c));
  c.once('error', reject);
});

describe('embedded broker (Aedes, TCP + WebSocket)', () => {
  let broker: EmbeddedBroker | undefined;
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await broker?.close();
    broker = undefined;
  });

  it('delivers a QoS 1 message published over TCP to a TCP and a WebSocket subscriber, and a retained one to late joiners', async () => {
    broker = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    expect(broker.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(broker.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const tcpSub = await connect(broker.url, 'tcp-sub');
    const wsSub = await connect(broker.wsUrl!, 'ws-sub');
    const pub = await connect(broker.url, 'pub');
    clients.push(tcpSub, wsSub, pub);
    const got = (c: mqtt.MqttClient) => new Promise<string>((resolve) => c.on('message', (topic, payload) => resolve(`${topic}=${payload.toString()}`)));
    const tcpGot = got(tcpSub);
    const wsGot = got(wsSub);
    await tcpSub.subscribeAsync('edgerun/+/+/results', { qos: 1 });
    await wsSub.subscribeAsync('edgerun/#', { qos: 1 });
    await pub.publishAsync('edgerun/f/d/results', 'hello', { qos: 1 });
    expect(await tcpGot).toBe('edgerun/f/d/results=hello');
    expect(await wsGot).toBe('edgerun/f/d/results=hello');

    // The WebSocket side publishes too; a retained status reaches a subscriber that comes later.
    await wsSub.publishAsync('edgerun/f/d/status', 'online', { qos: 1, retain: true });
    const late = await connect(broker.wsUrl!, 'late');
    clients.push(late);
    const lateGot = got(late);
    await late.subscribeAsync('edgerun/f/d/status', { qos: 1 });
    expect(await lateGot).toBe('edgerun/f/d/status=online');
    expect(broker.clients).toBe(4);
  });

  it('keeps a persistent session\'s QoS 1 messages while the subscriber is away', async () => {
    broker = await startEmbeddedBroker({ port: 0, wsPort: null });
    expect(broker.wsUrl).toBeUndefined();
    const sub = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect(broker!.url, { clientId: 'persistent', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    await sub.subscribeAsync('t/#', { qos: 1 });
    await sub.endAsync();
    const pub = await connect(broker.url, 'pub');
    clients.push(pub);
    for (let i = 0; i < 20; i++) await pub.publishAsync('t/x', String(i), { qos: 1 });
    const back = mqtt.connect(broker.url, { clientId: 'persistent', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(back);
    const seen: string[] = [];
    await new Promise<void>((resolve) => back.on('message', (_t, p) => { seen.push(p.toString()); if (seen.length === 20) resolve(); }));
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('closes cleanly (ports free again) and reports a busy port as a clear error', async () => {
    broker = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    const c = await connect(broker.url, 'c');
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const { port } = broker;
    await expect(startEmbeddedBroker({ port, wsPort: null })).rejects.toThrow(/cannot listen.*EADDRINUSE/);
    await broker.close();
    await broker.close();
    await closed;
    c.end(true);
    broker = await startEmbeddedBroker({ port, wsPort: null });
    expect(broker.port).toBe(port);
  });
});

describe('edgerun broker / serve without a broker URL (real processes)', () => {
  it('`edgerun broker` serves TCP and WebSocket clients and stops on SIGINT with exit 0', { timeout: 60_000 }, async () => {
    const proc = spawn(process.execPath, ['bin/edgerun.js', 'broker', '--port', '0', '--ws-port', '0'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    proc.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const end = Date.now() + 30_000;
    while (!/Ctrl-C/.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    const [, tcp, ws] = /(mqtt:\/\/127\.0\.0\.1:\d+)\s+(ws:\/\/127\.0\.0\.1:\d+)/.exec(out) ?? [];
    expect(tcp, out).toBeDefined();
    const sub = await connect(ws!, 'ws-sub');
    const pub = await connect(tcp!, 'tcp-pub');
    const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
    await sub.subscribeAsync('x', { qos: 1 });
    await pub.publishAsync('x', 'over tcp, to ws', { qos: 1 });
    expect(await got).toBe('over tcp, to ws');
    await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
    proc.kill('SIGINT');
    expect(await exit).toBe(0);
    expect(out).toContain('broker closed');
  });

  it('`edgerun serve` with no broker configured starts the embedded one and says where it is', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-serve-embedded-'));
    try {
      const r = await edgerun(['serve', '--model', 'models/mlp.onnx', '--rate', '0', '--count', '50', '--state-dir', join(dir, 'state'), '-q'],
        { EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'), EDGERUN_PLACEMENT__DEFAULT: 'digital' });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/embedded MQTT broker: mqtt:\/\/127\.0\.0\.1:\d+\s+ws:\/\/127\.0\.0\.1:\d+/);
      expect(r.stdout).toContain('50 results produced and acknowledged');
      // Run again on the same state: nothing more to produce.
      const again = await edgerun(['serve', '--model', 'models/mlp.onnx', '--count', '50', '--state-dir', join(dir, 'state'), '-q'],
        { EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'), EDGERUN_PLACEMENT__DEFAULT: 'digital' });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('50 results produced and acknowledged');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
