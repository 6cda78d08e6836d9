/**
 * `edgerun serve` end to end, as a real process on the embedded broker (Aedes, the default broker):
 * retained birth, results with their fields, periodic telemetry, signed commands that change what the
 * device does (pause/resume a stream, a power budget), a forged command refused, graceful SIGTERM
 * (status offline, exit 0), a restart on the same state dir continuing the result numbers, and the
 * last will when the process is SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../drivers/mqtt/embedded-broker.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { buildCommand } from '../../runtime/telemetry/commands.js';
import { decodeMessage, type Message } from '../../runtime/telemetry/envelope.js';
import { generateKeyPair, TrustStore } from '../../runtime/telemetry/keys.js';
import { repoRoot } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

const DEVICE = 'e2e-1';
const ROOT = `edgerun/test/${DEVICE}`;

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('edgerun serve (real process, embedded broker)', () => {
  let broker: EmbeddedBroker;
  let dir: string;
  let client: mqtt.MqttClient;
  const operator = generateKeyPair();
  const intruder = generateKeyPair();
  const got: { topic: string; retain: boolean; m: Message<Body> }[] = [];
  let proc: ChildProcess | undefined;
  let log = '';

  /** `env` values undefined remove a variable; `url` replaces the broker's. */
  const start = (env: Record<string, string | undefined> = {}, stateDir = join(dir, 'state'), args: string[] = [], url = broker.url): { exit: Promise<{ code: number | null; signal: string | null }> } => {
    log = '';
    proc = spawn(process.execPath, ['bin/edgerun.js', 'serve', '--url', url, '--model', 'models/mlp.onnx', '--rate', '40', '--state-dir', stateDir, ...args], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, EDGERUN_DEVICE__ID: DEVICE, EDGERUN_DEVICE__FLEET: 'test', EDGERUN_MQTT__PROTOCOL_VERSION: '4',
        EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '300', EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'), EDGERUN_PLACEMENT__DEFAULT: 'digital',
        // A laptop's sysfs tree (battery BAT0): the device's power sensor.
        EDGERUN_POWER__ROOT: join(repoRoot, 'test/power/fixtures/laptop/sys'),
        ...env,
      },
    });
    proc.stdout!.on('data', (b: Buffer) => { log += b.toString(); });
    proc.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
    return { exit: new Promise((resolve) => proc!.once('exit', (code, signal) => resolve({ code, signal }))) };
  };
  const ctx = () => `--- device log ---\n${log.slice(-5000)}`;
  const of = (kind: string, from = 0) => got.slice(from).filter((g) => g.topic === `${ROOT}/${kind}`);
  const send = (name: string, args: unknown, signer = operator) =>
    client.publishAsync(`${ROOT}/cmd/${name}`, Buffer.from(buildCommand({ device: DEVICE, name, args, signer })), { qos: 1 });
  const commandEvent = (name: string, from: number) => of('events', from).find((g) => g.m.body.command === name && g.m.body.type === 'command-result');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgerun-serve-'));
    const keys = new FsStorage(join(dir, 'keys'), 0o600);
    await (await TrustStore.open(keys)).add('operator', operator.publicKey);
    await keys.close();
    broker = await startEmbeddedBroker({ port: 0, wsPort: null });
    client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'e2e-watch', reconnectPeriod: 0 });
    client.on('message', (topic, payload, packet) => got.push({ topic, retain: packet.retain, m: decodeMessage<Body>(payload).message }));
    await client.subscribeAsync(`${ROOT}/#`, { qos: 1 });
  });
  afterAll(async () => {
    proc?.kill('SIGKILL');
    await client?.endAsync(true);
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams results and telemetry, obeys signed commands, refuses forged ones, shuts down gracefully, resumes numbering, leaves a will', { timeout: 180_000 }, async () => {
    const run1 = start();
    const birth = await until('the birth', () => of('status').find((g) => g.m.body.state === 'online'), 60_000, ctx);
    expect(birth.m.body).toMatchObject({ state: 'online', device: DEVICE, fleet: 'test', models: ['mlp'] });

    await until('5 results', () => of('results').length >= 5, 60_000, ctx);
    const r = of('results')[0]!.m;
    expect(r.device).toBe(DEVICE);
    expect(r.body).toMatchObject({ n: 0, stream: 'mlp', model: 'mlp', backend: 'digital', sample: 0 });
    expect(r.body.class).toBeGreaterThanOrEqual(0);
    expect(r.body.score).toBeGreaterThan(0);
    expect(typeof r.body.label).toBe('number');
    expect(typeof r.body.labelName).toBe('string');
    expect(r.body.latencyMs).toBeGreaterThan(0);
    expect(r.body.energyJ).toBeGreaterThan(0);

    const tel = await until('telemetry with completed inferences', () => of('telemetry').find((g) => g.m.body.completed > 0), 60_000, ctx);
    expect(tel.m.body.streams.mlp).toMatchObject({ model: 'mlp' });
    expect(tel.m.body.streams.mlp.serviceMs.count).toBeGreaterThan(0);
    expect(tel.m.body.backends.digital.completed).toBeGreaterThan(0);
    expect(tel.m.body.power.energy.perInferenceJ).toBeGreaterThan(0);
    expect(tel.m.body.power.governor.enabled).toBe(true);
    expect(tel.m.body.power.sensor).toBe('power_supply:BAT0');
    expect(tel.m.body.power.batteryPct).toBeGreaterThan(0);
    expect(tel.m.body.reporter.published).toBeGreaterThan(0);

    // pause-stream: the device stops producing; telemetry says so.
    let mark = got.length;
    await send('pause-stream', { stream: 'mlp' });
    const paused = await until('pause-stream result', () => commandEvent('pause-stream', mark), 30_000, ctx);
    expect(paused.m.body.ok).toBe(true);
    const pausedTel = await until('telemetry showing the pause', () => of('telemetry', mark).find((g) => g.m.body.streams.mlp.paused === true), 30_000, ctx);
    // A request in flight at the pause may still finish; after that, periods pass without new results.
    const t0 = of('telemetry').indexOf(pausedTel);
    await until('three more telemetry messages', () => of('telemetry').length >= t0 + 4, 30_000, ctx);
    const later = of('telemetry').slice(t0 + 1).map((g) => g.m.body.results as number);
    expect(later.at(-1)).toBe(later.at(-2));
    expect(later.at(-1)! - (pausedTel.m.body.results as number)).toBeLessThanOrEqual(1);

    mark = got.length;
    await send('resume-stream', { stream: 'mlp' });
    await until('results after resume', () => of('results', mark).length >= 3, 30_000, ctx);

    // A power budget the device cannot meet: the governor steps down and says why (events + telemetry).
    mark = got.length;
    await send('set-power-budget', { powerCapW: 1e-9 });
    const budget = await until('set-power-budget result', () => commandEvent('set-power-budget', mark), 30_000, ctx);
    expect(budget.m.body.ok).toBe(true);
    await until('a governor decision event', () => of('events', mark).find((g) => g.m.body.type === 'governor'), 30_000, ctx);
    await until('telemetry with governor steps', () => of('telemetry', mark).find((g) => g.m.body.power.governor.steps.length > 0), 30_000, ctx);

    // A command signed by an untrusted key changes nothing and is reported.
    mark = got.length;
    await send('resume-stream', { stream: 'mlp' }, intruder);
    const rejected = await until('the rejection event', () => of('events', mark).find((g) => g.m.body.type === 'command-rejected'), 30_000, ctx);
    expect(rejected.m.body.reason).toBe('unknown-key');

    // SIGTERM: graceful, status offline (shutdown), exit 0.
    mark = got.length;
    proc!.kill('SIGTERM');
    expect(await run1.exit).toEqual({ code: 0, signal: null });
    const offline = await until('status offline', () => of('status', mark).find((g) => g.m.body.state === 'offline'), 30_000, ctx);
    expect(offline.m.body.reason).toBe('shutdown');
    const lastN = Math.max(...of('results').map((g) => g.m.body.n as number));
    const lastSeq = Math.max(...got.filter((g) => !g.retain && !g.topic.includes('/cmd/')).map((g) => g.m.seq));

    // Restart on the same state dir: result numbers and seqs continue; the budget was not persisted.
    mark = got.length;
    const run2 = start();
    await until('results of the second run', () => of('results', mark).length >= 3, 60_000, ctx);
    const next = of('results', mark).map((g) => g.m);
    expect(Math.min(...next.map((m) => m.body.n as number))).toBe(lastN + 1);
    expect(Math.min(...next.map((m) => m.seq))).toBeGreaterThan(lastSeq);

    // SIGKILL: the broker publishes the device's will.
    mark = got.length;
    proc!.kill('SIGKILL');
    expect((await run2.exit).signal).toBe('SIGKILL');
    const will = await until('the will', () => of('status', mark).find((g) => g.m.body.state === 'offline'), 60_000, ctx);
    expect(will.m.body.reason).toBe('connection lost');
  });

  it('says why it cannot connect, still exits on SIGTERM with --count, and the next start delivers what waited in the outbox', { timeout: 180_000 }, async () => {
    const mark = got.length;
    const stateDir = join(dir, 'state-refused');
    // MQTT 5 against Aedes (3.1.1 only): every CONNECT is refused.
    const refused = start({ EDGERUN_MQTT__PROTOCOL_VERSION: '5' }, stateDir, ['--count', '5']);
    await until('the refusal in the log, once serving', () => /mqtt: .*protocol version/i.test(log) && log.includes('serving;'), 60_000, ctx);
    proc!.kill('SIGTERM');
    expect(await refused.exit).toEqual({ code: 0, signal: null });
    expect(log).not.toMatch(/produced and acknowledged/);
    expect(of('results', mark)).toHaveLength(0);

    const again = start({}, stateDir, ['--count', '5']);
    expect(await again.exit, ctx()).toEqual({ code: 0, signal: null });
    const numbers = new Set(of('results', mark).map((g) => g.m.body.n as number));
    expect([...numbers].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a power cap lowers the analog device\'s ADC resolution when the governor may only do that', { timeout: 180_000 }, async () => {
    const mark = got.length;
    // A pcm device with a 12-bit ADC: conversions above the profile's 8-bit knee cost ×4 per bit, so stepping down saves energy.
    const profile = JSON.parse(readFileSync(join(repoRoot, 'drivers/crossbar/profiles/pcm.json'), 'utf8'));
    const profileFile = join(dir, 'pcm-adc12.json');
    writeFileSync(profileFile, JSON.stringify({ ...profile, name: 'pcm-adc12', adc: { ...profile.adc, bits: 12 } }));
    const run = start({
      EDGERUN_PLACEMENT__DEFAULT: 'auto', EDGERUN_POWER__SENSOR: 'none', EDGERUN_ANALOG__PROFILE: profileFile,
      EDGERUN_POWER__GOVERNOR__ACTIONS: '["adc-bits"]', EDGERUN_POWER__GOVERNOR__POWER_CAP_W: '1e-9', EDGERUN_POWER__GOVERNOR__TICK_S: '0.2',
    }, join(dir, 'state-adc'));
    const governor = (event: string) => of('events', mark).filter((g) => g.m.body.type === 'governor' && g.m.body.event === event);
    const step = await until('an ADC step down', () => governor('decision').find((g) => /^ADC 12 → \d+ bits$/.test(g.m.body.action)), 90_000, ctx);
    expect(step.m.body).toMatchObject({ direction: 'down' });
    await until('analog results after the step', () => of('results', mark).filter((g) => g.m.body.backend === 'analog' && g.m.seq > step.m.seq).length >= 3, 60_000, ctx);
    expect(governor('action-failed')).toEqual([]);
    proc!.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('on the analog device with the accuracy guard on: results served by analog, guard checks and device age in telemetry', { timeout: 180_000 }, async () => {
    const mark = got.length;
    const run = start({ EDGERUN_PLACEMENT__DEFAULT: 'auto', EDGERUN_GUARD__ENABLED: 'true', EDGERUN_GUARD__INTERVAL_MS: '200' }, join(dir, 'state-analog'));
    await until('analog results', () => of('results', mark).find((g) => g.m.body.backend === 'analog'), 90_000, ctx);
    const tel = await until('telemetry with a guard check', () => of('telemetry', mark).find((g) => g.m.body.guards?.mlp?.checks > 0), 90_000, ctx);
    expect(tel.m.body.guards.mlp).toMatchObject({ model: 'mlp', state: 'ok' });
    expect(tel.m.body.deviceAgeS).toBeGreaterThan(0);
    expect(tel.m.body.models.mlp).toMatchObject({ placement: 'accelerator', backend: 'analog' });
    const stopMark = got.length;
    proc!.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
    // The last telemetry describes the device as it ran: the accelerator healthy, the model loaded on it.
    await until('status offline', () => of('status', stopMark).find((g) => g.m.body.state === 'offline'), 30_000, ctx);
    const last = of('telemetry', stopMark).at(-1);
    expect(last, ctx()).toBeDefined();
    expect(last!.m.body.models.mlp).toMatchObject({ state: 'serving', loaded: true, accelerator: { state: 'healthy' } });
  });

  it('keeps keys, trust store and replay state in --state-dir, and never prints the password of --url', { timeout: 180_000 }, async () => {
    const mark = got.length;
    const stateDir = join(dir, 'state-own-keys');
    const keys = new FsStorage(join(stateDir, 'keys'), 0o600);
    await (await TrustStore.open(keys)).add('operator', operator.publicKey);
    await keys.close();
    const url = broker.url.replace('mqtt://', 'mqtt://device:s3cret-pw@');
    const run = start({ EDGERUN_SECURITY__KEY_DIR: undefined, EDGERUN_SECURITY__SIGN: 'true' }, stateDir, [], url);
    await until('results', () => of('results', mark).length >= 2, 60_000, ctx);
    const signed = decodeMessage(await new Promise<Uint8Array>((resolve) => {
      const c = mqtt.connect(broker.url, { protocolVersion: 4 });
      c.on('message', (_t, p) => { resolve(new Uint8Array(p)); c.end(true); });
      void c.subscribeAsync(`${ROOT}/results`, { qos: 0 });
    }));
    const deviceKey = JSON.parse(readFileSync(join(stateDir, 'keys', 'device.key'), 'utf8')) as { publicKey: string };
    expect(Buffer.from(signed.signedBy!).toString('base64')).toBe(deviceKey.publicKey);
    await send('pause-stream', { stream: 'mlp' });
    const paused = await until('pause-stream result', () => commandEvent('pause-stream', mark), 30_000, ctx);
    expect(paused.m.body.ok).toBe(true);
    expect(JSON.parse(readFileSync(join(stateDir, 'keys', 'command-replay.json'), 'utf8'))).toBeTruthy();
    proc!.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(log).toContain('mqtt://device:***@127.0.0.1');
    expect(log).not.toContain('s3cret-pw');
  });
});
