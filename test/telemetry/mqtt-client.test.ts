/**
 * The mqtt.js driver of the MQTT port on real brokers: WebSocket URLs (the embedded broker's ws
 * listener), username/password (Aedes' authenticate hook), mqtts with a CA and a client certificate
 * (Mosquitto with require_certificate, certificates made by openssl here).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { startEmbeddedBroker } from '../../drivers/mqtt/embedded-broker.js';
import { NotConnectedError, type IncomingMessage } from '../../runtime/telemetry/mqtt-port.js';
import { describeMosquitto, freePort, Mosquitto, startAedes } from '../helpers/mosquitto.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function connected(c: MqttClient, limitMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (c.connected) { resolve(); return; }
    const t = setTimeout(() => reject(new Error('did not connect')), limitMs);
    const off = c.onConnect(() => { clearTimeout(t); off(); resolve(); });
  });
}

/** Subscribes, publishes QoS 1 (resolves on PUBACK) and receives its own message back. */
async function roundTrip(c: MqttClient, topic: string): Promise<IncomingMessage> {
  const got = new Promise<IncomingMessage>((resolve) => { const off = c.onMessage((m) => { off(); resolve(m); }); });
  await c.subscribe(topic, 1);
  await c.publish(topic, new TextEncoder().encode('hello'), { qos: 1 });
  return got;
}

describe('MqttClient', () => {
  it('rejects publish while not connected (no offline queue: the outbox resends)', async () => {
    const c = new MqttClient({ url: 'mqtt://127.0.0.1:1', clientId: 'nobody', reconnect: { initialMs: 1000 } });
    cleanups.push(() => c.end({ force: true }));
    c.connect();
    await expect(c.publish('t', new Uint8Array([1]), { qos: 1 })).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('speaks ws:// to the embedded broker', async () => {
    const broker = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    cleanups.push(() => broker.close());
    const c = new MqttClient({ url: broker.wsUrl!, clientId: 'ws-client', protocolVersion: 4 });
    cleanups.push(() => c.end());
    c.connect();
    await connected(c);
    const m = await roundTrip(c, 'edgerun/ws/test');
    expect(new TextDecoder().decode(m.payload)).toBe('hello');
  });

  it('authenticates with username and password; a wrong password never connects', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    aedes.broker.authenticate = (_client, username, password, done) => {
      const ok = username === 'device' && password?.toString() === 's3cret';
      done(ok ? null : Object.assign(new Error('bad credentials'), { returnCode: 4 }), ok);
    };
    const errors: Error[] = [];
    const bad = new MqttClient({ url: aedes.url, clientId: 'bad', protocolVersion: 4, username: 'device', password: 'nope', onError: (e) => errors.push(e), reconnect: { initialMs: 50, maxMs: 100 } });
    cleanups.push(() => bad.end({ force: true }));
    bad.connect();
    const good = new MqttClient({ url: aedes.url, clientId: 'good', protocolVersion: 4, username: 'device', password: 's3cret' });
    cleanups.push(() => good.end());
    good.connect();
    await connected(good);
    await roundTrip(good, 'edgerun/auth/test');
    expect(bad.connected).toBe(false);
    expect(errors.some((e) => /bad user|not authori|Connection refused/i.test(e.message))).toBe(true);
  });
});

describeMosquitto('MqttClient over TLS', () => {
  const openssl = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find((p) => existsSync(p));
  it.skipIf(!openssl)('connects with mqtts://, a CA file and a client certificate (MQTT 5 and 3.1.1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ssl = (...args: string[]) => execFileSync(openssl!, args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=edgerun test CA');
    for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'edge-1']] as const) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      const ext = join(dir, `${name}.ext`);
      execFileSync('/bin/sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', ext);
    }
    const tlsPort = await freePort();
    const broker = await Mosquitto.start({
      persistence: false,
      config: [`listener ${tlsPort} 127.0.0.1`, `cafile ${dir}/ca.pem`, `certfile ${dir}/server.pem`, `keyfile ${dir}/server.key`, 'require_certificate true'],
    });
    cleanups.push(() => broker.dispose());
    for (const protocolVersion of [5, 4] as const) {
      const c = new MqttClient({ url: `mqtts://127.0.0.1:${tlsPort}`, clientId: `tls-${protocolVersion}`, protocolVersion, ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') });
      cleanups.push(() => c.end());
      c.connect();
      await connected(c);
      const m = await roundTrip(c, `edgerun/tls/${protocolVersion}`);
      expect(new TextDecoder().decode(m.payload)).toBe('hello');
    }
    // Without the client certificate the broker refuses the TLS handshake.
    const errors: Error[] = [];
    const anon = new MqttClient({ url: `mqtts://127.0.0.1:${tlsPort}`, clientId: 'tls-anon', ca: join(dir, 'ca.pem'), onError: (e) => errors.push(e), reconnect: { initialMs: 50, maxMs: 100 } });
    cleanups.push(() => anon.end({ force: true }));
    anon.connect();
    const end = Date.now() + 10_000;
    while (!errors.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(errors.length).toBeGreaterThan(0);
    expect(anon.connected).toBe(false);
  });
});
