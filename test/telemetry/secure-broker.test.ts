/**
 * A production-shaped broker: Mosquitto with TLS (a CA, a server certificate for 127.0.0.1 and
 * localhost, client certificates — all made with openssl), username/password (mosquitto_passwd) and
 * an ACL of patterns that confines each device (username = device id) to its own topics. The device
 * daemon and the listener connect with nothing but configuration (README "Secure production
 * configuration"); a device cannot publish into another device's topics nor read another's
 * commands; a wrong password ends `edgerun listen` with a one-line reason.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { buildCommand } from '../../runtime/telemetry/commands.js';
import { decodeMessage, encodeMessage } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, generateKeyPair } from '../../runtime/telemetry/keys.js';
import type { IncomingMessage } from '../../runtime/telemetry/mqtt-port.js';
import { commandFilter, commandTopic, deviceTopic } from '../../runtime/telemetry/topics.js';
import { edgerun, repoRoot } from '../helpers/cli.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { until } from '../helpers/until.js';

const FLEET = 'secure';
const PASSWORDS: Record<string, string> = { 'sec-1': 'pw-one', 'sec-2': 'pw-two', consumer: 'pw-consumer', operator: 'pw-operator' };
const address = (device: string) => ({ prefix: 'edgerun', fleet: FLEET, device });

/** The ACL of README "Secure production configuration": devices are users named by their device id. */
export const ACL = `# Consumers (dashboards, edgerun listen) read everything of the fleets.
user consumer
topic read edgerun/#

# Operators send commands (signed as well: the device checks the signature) and read the reports.
user operator
topic write edgerun/+/+/cmd/#
topic read edgerun/#

# Every device (username = its device id): its own reports out, its own commands in, nothing else.
pattern write edgerun/+/%u/status
pattern write edgerun/+/%u/results
pattern write edgerun/+/%u/detections
pattern write edgerun/+/%u/telemetry
pattern write edgerun/+/%u/events
pattern read edgerun/+/%u/cmd/+
`;

describeMosquitto('secure broker: TLS, passwords and per-device ACL on Mosquitto', () => {
  let dir: string;
  let pki: Pki;
  let broker: Mosquitto;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgerun-secure-'));
    pki = makePki(dir, { clients: Object.keys(PASSWORDS) });
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, '');
    for (const [user, password] of Object.entries(PASSWORDS)) execFileSync('mosquitto_passwd', ['-b', passwd, user, password], { stdio: 'ignore' });
    writeFileSync(join(dir, 'acl'), ACL);
    broker = await Mosquitto.start({
      persistence: false, allowAnonymous: false,
      tls: { ca: pki.ca, cert: pki.server.cert, key: pki.server.key, requireCertificate: true },
      config: [`password_file ${passwd}`, `acl_file ${join(dir, 'acl')}`],
    });
  });
  afterAll(async () => {
    for (const c of clients) await c.end({ force: true });
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The config file a device or tool of that user would have. */
  const configFile = (user: string, extra: Record<string, unknown> = {}, password = PASSWORDS[user]): string => {
    const file = join(dir, `${user}-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({
      device: { id: user, fleet: FLEET },
      mqtt: { url: broker.url, username: user, password, ca: pki.ca, cert: pki.clients[user]!.cert, key: pki.clients[user]!.key },
      placement: { default: 'digital' }, power: { sensor: 'none' },
      ...extra,
    }));
    return file;
  };

  const connectAs = async (user: string): Promise<{ client: MqttClient; got: IncomingMessage[] }> => {
    const client = new MqttClient({
      url: broker.url, clientId: `${user}-${Math.random().toString(16).slice(2)}`, clean: true, username: user, password: PASSWORDS[user],
      ca: pki.ca, cert: pki.clients[user]!.cert, key: pki.clients[user]!.key,
    });
    clients.push(client);
    const got: IncomingMessage[] = [];
    client.onMessage((m) => got.push(m));
    const connected = new Promise<void>((resolve) => client.onConnect(() => resolve()));
    client.connect();
    await connected;
    return { client, got };
  };

  it('a device reports over TLS with its client certificate and password; a consumer reads it with edgerun listen', { timeout: 180_000 }, async () => {
    const listen = spawn(process.execPath, ['bin/edgerun.js', '-c', configFile('consumer'), 'listen', '--fleet', FLEET, '--kinds', 'results', '--count', '3', '--timeout', '120', '--json'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    listen.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    listen.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<number | null>((resolve) => listen.once('exit', resolve));
    await until('the listener subscribed', () => err.includes('listening on'), 60_000, () => err);

    const serve = await edgerun(['-c', configFile('sec-1'), 'serve', '--model', 'models/mlp.onnx', '--count', '3', '--rate', '20', '--state-dir', join(dir, 'state-sec-1')]);
    expect(serve.code, serve.stdout + serve.stderr).toBe(0);
    expect(serve.stdout).toContain(`watch with: npx edgerun listen --url ${broker.url}`);
    expect(await exited, err).toBe(0);
    const results = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => !('summary' in l));
    expect(results).toHaveLength(3);
    for (const r of results) expect(r).toMatchObject({ device: 'sec-1', kind: 'results', topic: deviceTopic(address('sec-1'), 'results') });
  });

  it('a device cannot publish into another device\'s topics nor send commands', { timeout: 60_000 }, async () => {
    const consumer = await connectAs('consumer');
    await consumer.client.subscribe('edgerun/#', 1);
    const { client: dev1 } = await connectAs('sec-1');
    const forged = (device: string, kind: 'results' | 'status') => encodeMessage({ device, seq: 1, ts: Date.now(), kind, body: { forged: true } });
    const attempts = [
      { topic: deviceTopic(address('sec-2'), 'results'), payload: forged('sec-2', 'results') },
      { topic: deviceTopic(address('sec-2'), 'status'), payload: forged('sec-2', 'status') },
      { topic: commandTopic(address('sec-2'), 'pause-stream'), payload: buildCommand({ device: 'sec-2', name: 'pause-stream', args: {}, signer: generateKeyPair() }) },
    ];
    // MQTT 5: Mosquitto answers a denied publish with PUBACK "not authorized" (0x87); either way nothing is delivered.
    for (const a of attempts) await expect(dev1.publish(a.topic, a.payload, { qos: 1 })).rejects.toMatchObject({ reasonCode: 0x87 });
    // Its own results go through: once they arrived, everything published before them was handled.
    await dev1.publish(deviceTopic(address('sec-1'), 'results'), forged('sec-1', 'results'), { qos: 1 });
    await until('the device\'s own results at the consumer', () => consumer.got.some((m) => m.topic === deviceTopic(address('sec-1'), 'results')));
    expect(consumer.got.filter((m) => m.topic.includes('/sec-2/'))).toEqual([]);
  });

  it('a device cannot read another device\'s commands; it gets its own', { timeout: 60_000 }, async () => {
    const { client: dev1, got } = await connectAs('sec-1');
    await dev1.subscribe(commandFilter(address('sec-2')), 1);
    await dev1.subscribe(commandFilter(address('sec-1')), 1);
    await dev1.subscribe('edgerun/#', 1); // a wildcard gets only what the ACL lets it read
    const { client: operator } = await connectAs('operator');
    const key = generateKeyPair();
    for (const device of ['sec-2', 'sec-1']) {
      await operator.publish(commandTopic(address(device), 'pause-stream'), buildCommand({ device, name: 'pause-stream', args: { stream: 'mlp' }, signer: key }), { qos: 1 });
    }
    await until('its own command', () => got.some((m) => m.topic === commandTopic(address('sec-1'), 'pause-stream')));
    expect(got.filter((m) => m.topic.includes('/sec-2/'))).toEqual([]);
    expect(decodeMessage(got.find((m) => m.topic.includes('/sec-1/'))!.payload).message).toMatchObject({ device: 'sec-1', kind: 'cmd' });
  });

  it('a wrong password or a missing client certificate is refused with a one-line reason; the password is never printed', { timeout: 180_000 }, async () => {
    writeFileSync(join(dir, 'operator.key'), encodeKeyFile(generateKeyPair(), 'operator'), { mode: 0o600 });
    const bad = await edgerun(['-c', configFile('consumer', {}, 'wrong-secret'), 'listen', '--timeout', '60']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^edgerun listen: the broker at mqtts:\/\/127\.0\.0\.1:\d+ refused the connection: .*(user ?name or password|not authori[sz]ed).*\(code \d+\)$/i)]);
    expect(bad.stderr + bad.stdout).not.toContain('wrong-secret');

    const inUrl = await edgerun(['-c', configFile('consumer'), 'listen', '--url', broker.url.replace('mqtts://', 'mqtts://consumer:wrong-secret@'), '--timeout', '60']);
    expect(inUrl.code).toBe(1);
    expect(inUrl.stderr).toContain('mqtts://consumer:***@127.0.0.1');
    expect(inUrl.stderr + inUrl.stdout).not.toContain('wrong-secret');

    const cmd = await edgerun(['-c', configFile('operator', {}, 'wrong-secret'), 'cmd', 'sec-1', 'pause-stream', '--args', '{"stream":"mlp"}', '--key', join(dir, 'operator.key')]);
    expect(cmd.code).not.toBe(0);
    expect(cmd.stderr.trim().split('\n')).toEqual([expect.stringMatching(/refused the connection: .*\(code \d+\)$/)]);

    // No client certificate: the TLS handshake fails; by --timeout the listener says so and exits 1.
    const file = join(dir, 'no-cert.json');
    writeFileSync(file, JSON.stringify({ mqtt: { url: broker.url, username: 'consumer', password: PASSWORDS.consumer, ca: pki.ca } }));
    const noCert = await edgerun(['-c', file, 'listen', '--timeout', '3']);
    expect(noCert.code, noCert.stderr).toBe(1);
    expect(noCert.stderr.trim().split('\n').at(-1)).toMatch(/^edgerun listen: no connection to mqtts:\/\/127\.0\.0\.1:\d+ within 3 s \(.+\)$/);
  });
});
