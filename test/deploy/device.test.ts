/**
 * Deployments end to end on real parts: a real Mosquitto, `edgerun serve` as a real process serving
 * the CNN on the emulated analog crossbar (pcm), bundles built from real models with onnxruntime's
 * outputs, pushed in chunks by the real pusher (and once by the `edgerun deploy push` CLI), fetched
 * from a local HTTP server with a connection cut mid-way, every refusal of the issue, rollback, and
 * SIGKILL of the device in each state of a deployment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { parseDataset, type Dataset } from '../../runtime/dataset.js';
import { buildBundle } from '../../runtime/deploy/build.js';
import { packBundle, readBundle } from '../../runtime/deploy/bundle.js';
import type { DeployStatus } from '../../runtime/deploy/installer.js';
import { pushBundle } from '../../runtime/deploy/pusher.js';
import { signManifest } from '../../runtime/deploy/signature.js';
import { decodeChunk, encodeChunk } from '../../runtime/deploy/transfer.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, TrustStore } from '../../runtime/telemetry/keys.js';
import type { MqttPort } from '../../runtime/telemetry/mqtt-port.js';
import { repoRoot } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { buildModel } from '../helpers/onnx-builder.js';
import { until } from '../helpers/until.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const FLEET = 'dt';
const operator = nacl.sign.keyPair();
const stranger = nacl.sign.keyPair();
const limits = { maxBytes: 64 << 20, maxModelBytes: 32 << 20 };

let dir: string;
let broker: Mosquitto;
let watcher: mqtt.MqttClient;
let digital: DigitalBackend;
let cnn: LoadedModel;
let canary: Dataset;
const got: { topic: string; body: Body }[] = [];

interface BundleSpec { version: string; model?: LoadedModel; canary?: Dataset; minRuntime?: string; minAgreement?: number; minCosine?: number; signer?: nacl.SignKeyPair; profiles?: string[] }
async function bundleOf(s: BundleSpec): Promise<Uint8Array> {
  const bytes = await buildBundle({
    id: 'cnn', version: s.version, model: s.model ?? cnn, digital, canary: s.canary ?? canary, canaryCount: 32, profiles: s.profiles ?? ['pcm'],
    minRuntime: s.minRuntime ?? '0.1.0', minAgreement: s.minAgreement ?? 0.75, minCosine: s.minCosine ?? 0.9,
  });
  const b = await readBundle(bytes, limits);
  return packBundle({ ...b, signature: signManifest(b.manifestBytes, s.signer ?? operator) });
}

class Dev {
  proc: ChildProcess | undefined;
  log = '';
  exit: Promise<{ code: number | null; signal: string | null }> = Promise.resolve({ code: 0, signal: null });
  constructor(readonly id: string) {}
  get stateDir(): string { return join(dir, this.id); }
  get root(): string { return `edgerun/${FLEET}/${this.id}`; }
  start(env: Record<string, string> = {}): void {
    this.proc = spawn(process.execPath, ['bin/edgerun.js', 'serve', '--url', broker.url, '--model', 'models/cnn.onnx', '--rate', '25', '--state-dir', this.stateDir], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, EDGERUN_DEVICE__ID: this.id, EDGERUN_DEVICE__FLEET: FLEET, EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'),
        EDGERUN_PLACEMENT__DEFAULT: 'analog', EDGERUN_ANALOG__PROFILE: 'pcm', EDGERUN_POWER__SENSOR: 'none',
        EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000', EDGERUN_DEPLOY__TRANSFER_TIMEOUT_MS: '3000', ...env,
      },
    });
    this.proc.stdout!.on('data', (b: Buffer) => { this.log += b.toString(); });
    this.proc.stderr!.on('data', (b: Buffer) => { this.log += b.toString(); });
    const p = this.proc;
    this.exit = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
  }
  ctx = (): string => `--- ${this.id} log ---\n${this.log.slice(-4000)}`;
  of(kind: string, from = 0): Body[] { return got.slice(from).filter((g) => g.topic === `${this.root}/${kind}`).map((g) => g.body); }
  /** A result produced after `from` (an index into got). */
  async resultAfter(from: number): Promise<Body> { return until(`a result of ${this.id}`, () => this.of('results', from)[0], 60_000, this.ctx); }
  async online(from: number): Promise<void> { await until(`${this.id} online`, () => this.of('status', from).find((b) => b.state === 'online'), 90_000, this.ctx); await this.resultAfter(from); }
  active(): Record<string, unknown> | undefined {
    const f = join(this.stateDir, 'deploy', 'active.json');
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { models: Record<string, unknown> }).models : undefined;
  }
  /** Installed versions on disk, as `<model>/<version>`. */
  versionDirs(): string[] { const d = join(this.stateDir, 'deploy', 'versions'); return existsSync(d) ? readdirSync(d).flatMap((m) => readdirSync(join(d, m)).map((v) => `${m}/${v}`)).sort() : []; }
  async stop(): Promise<void> { this.proc?.kill('SIGTERM'); await this.exit; }
}

/** An MQTT port for the pusher, optionally changing chunks on their way (a man in the middle). */
async function pusherPort(transform?: (index: number, payload: Uint8Array) => Uint8Array | undefined): Promise<MqttPort & { end(): Promise<void> }> {
  const c = new MqttClient({ url: broker.url, clientId: `pusher-${Math.random().toString(16).slice(2)}`, clean: true });
  const connected = new Promise<void>((r) => c.onConnect(() => r()));
  c.connect();
  await connected;
  if (!transform) return c;
  return {
    get connected() { return c.connected; },
    get protocolVersion() { return c.protocolVersion; },
    connect: () => c.connect(), setWill: (w) => c.setWill(w), subscribe: (f, q) => c.subscribe(f, q), unsubscribe: (f) => c.unsubscribe(f),
    onMessage: (h) => c.onMessage(h), onConnect: (h) => c.onConnect(h), onClose: (h) => c.onClose(h), end: () => c.end(),
    publish: (topic, payload, opts) => {
      if (!topic.includes('/deploy/chunk/')) return c.publish(topic, payload, opts);
      const out = transform(new DataView(payload.buffer, payload.byteOffset).getUint32(0, false), payload);
      return out ? c.publish(topic, out, opts) : Promise.resolve();
    },
  };
}

async function push(dev: Dev, bytes: Uint8Array, o: { url?: string; allowDowngrade?: boolean; transform?: Parameters<typeof pusherPort>[0]; chunkSize?: number } = {}): Promise<DeployStatus> {
  const port = await pusherPort(o.transform);
  try {
    return await pushBundle({
      mqtt: port, address: { prefix: 'edgerun', fleet: FLEET, device: dev.id }, bytes, id: `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      signer: operator, chunkSize: o.chunkSize ?? 16 * 1024, silenceMs: 90_000, ...(o.url ? { url: o.url } : {}), ...(o.allowDowngrade ? { allowDowngrade: true } : {}),
    });
  } finally {
    await port.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-deploy-'));
  const keys = new FsStorage(join(dir, 'keys'), 0o600);
  await (await TrustStore.open(keys)).add('operator', operator.publicKey);
  await keys.close();
  writeFileSync(join(dir, 'operator.key'), encodeKeyFile(operator, 'operator'), { mode: 0o600 });
  digital = new DigitalBackend();
  cnn = loadModel(new Uint8Array(readFileSync(join(repoRoot, 'models/cnn.onnx'))), { source: 'cnn.onnx' });
  canary = parseDataset(new Uint8Array(readFileSync(join(repoRoot, 'models/data/canary-64.bin'))));
  broker = await Mosquitto.start({ persistence: false });
  watcher = await mqtt.connectAsync(broker.url, { clientId: 'deploy-watch', reconnectPeriod: 0 });
  watcher.on('message', (topic, payload) => {
    try { got.push({ topic, body: decodeMessage<Body>(payload).message.body }); } catch { /* chunks are not messages */ }
  });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/results`, { qos: 1 });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/status`, { qos: 1 });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/deploy/status`, { qos: 1 });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/events`, { qos: 1 });
}, 120_000);

afterAll(async () => {
  await watcher?.endAsync(true);
  await digital?.dispose();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describeMosquitto('deploy to a device', () => {
  const dev = new Dev('dev-a');
  let http: Server;
  let cutFirst = true;

  afterAll(async () => {
    dev.proc?.kill('SIGKILL');
    await new Promise((r) => (http ? http.close(r) : r(undefined)));
  });

  it('pushes over MQTT (CLI, to a group found from the births), self-tests on the analog placement, activates; results then name the new version', { timeout: 300_000 }, async () => {
    dev.start({ EDGERUN_DEVICE__GROUP: 'line-1' });
    await dev.online(0);
    const before = await dev.resultAfter(0);
    expect(before.backend).toBe('analog');
    expect(before.modelVersion).toBeUndefined();

    const file = join(dir, 'cnn-1.1.0.bundle');
    writeFileSync(file, await bundleOf({ version: '1.1.0' }));
    const cli = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['bin/edgerun.js', 'deploy', 'push', file, '--to', 'group:line-1', '--discover', '2', '--fleet', FLEET, '--url', broker.url, '--key', join(dir, 'operator.key'), '--chunk-size', '16384', '--json'], { cwd: repoRoot });
      let out = '';
      p.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      p.stderr.on('data', (b: Buffer) => { out += b.toString(); });
      p.once('exit', (code) => resolve({ code, out }));
    });
    expect(cli.code, cli.out).toBe(0);
    const outcome = JSON.parse(cli.out.trim().split('\n').pop()!) as Body;
    expect(outcome).toMatchObject({ device: dev.id, state: 'active', model: 'cnn', version: '1.1.0', from: null, active: { cnn: '1.1.0' } });
    expect(outcome.selfTest).toMatchObject({ servedBy: 'analog', canaries: 32 });
    expect(outcome.selfTest.agreement).toBeGreaterThanOrEqual(outcome.selfTest.minAgreement);
    expect(outcome.selfTest.energyJ).toBeGreaterThan(0);
    expect(Object.keys(outcome.timings)).toEqual(expect.arrayContaining(['transferMs', 'verifyMs', 'stageMs', 'selfTestMs', 'switchMs']));
    const mark = got.length;
    const after = await until('a result of 1.1.0', () => dev.of('results', mark).find((r) => r.modelVersion === '1.1.0'), 60_000, dev.ctx);
    expect(after.backend).toBe('analog');
    expect(dev.active()).toEqual({ cnn: { version: '1.1.0', previous: [] } });
    expect(dev.of('events').some((e) => e.type === 'deploy' && e.state === 'active' && e.version === '1.1.0')).toBe(true);
  });

  it('fetches by URL with HTTP Range resume after a cut connection', { timeout: 300_000 }, async () => {
    const bytes = await bundleOf({ version: '1.2.0' });
    const ranges: string[] = [];
    http = createServer((req, res) => {
      const range = req.headers.range;
      ranges.push(range ?? 'none');
      const from = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
      res.writeHead(range ? 206 : 200, { 'content-length': bytes.byteLength - from, ...(range ? { 'content-range': `bytes ${from}-${bytes.byteLength - 1}/${bytes.byteLength}` } : {}) });
      if (cutFirst) {
        cutFirst = false;
        res.write(Buffer.from(bytes.subarray(from, from + 100_000)), () => res.destroy());
      } else res.end(Buffer.from(bytes.subarray(from)));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/cnn-1.2.0.bundle`;
    const status = await push(dev, bytes, { url });
    expect(status, dev.ctx()).toMatchObject({ state: 'active', version: '1.2.0', from: '1.1.0' });
    expect(ranges[0]).toBe('none');
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThan(0);
    const mark = got.length;
    await until('a result of 1.2.0', () => dev.of('results', mark).find((r) => r.modelVersion === '1.2.0'), 60_000, dev.ctx);
    expect(dev.active()).toEqual({ cnn: { version: '1.2.0', previous: ['1.1.0'] } });
  });

  it('refuses each bad deployment with its reason; 1.2.0 keeps serving and nothing new is left on disk', { timeout: 600_000 }, async () => {
    const good = await bundleOf({ version: '1.3.0' });
    const b = await readBundle(good, limits);
    // A model whose input does not fit the device's 1×28×28 stream (built with its own 32×32 canaries).
    const wide = loadModel(buildModel({
      nodes: [{ op: 'Flatten', inputs: ['input'], outputs: ['f'] }, { op: 'MatMul', inputs: ['f', 'w'], outputs: ['logits'] }],
      initializers: [{ name: 'w', dims: [1024, 10], data: new Float32Array(10240).fill(0.01) }],
      inputs: [{ name: 'input', dims: ['N', 1, 32, 32] }], outputs: [{ name: 'logits', dims: ['N', 10] }],
    }));
    const header = new Uint8Array(24);
    header.set(new TextEncoder().encode('EDGD'));
    [1, 8, 1, 32, 32].forEach((v, i) => new DataView(header.buffer).setUint32(4 + i * 4, v, true));
    const wideCanary = parseDataset(new Uint8Array([...header, ...new Uint8Array(8), ...new Uint8Array(8 * 1024).map((_, i) => i % 251)]));
    const editedManifest = new TextEncoder().encode(new TextDecoder().decode(b.manifestBytes).replace('"minAgreement": 0.75', '"minAgreement": 0.1'));
    const otherModel = new Uint8Array(readFileSync(join(repoRoot, 'models/mlp.onnx')));

    const cases: { name: string; reason: string; run: () => Promise<DeployStatus> }[] = [
      { name: 'forged signature', reason: 'forged-signature', run: async () => push(dev, await packBundle({ ...b, manifestBytes: editedManifest })) },
      { name: 'unknown key', reason: 'unknown-key', run: async () => push(dev, await bundleOf({ version: '1.3.0', signer: stranger })) },
      {
        name: 'tampered chunk', reason: 'hash-mismatch', run: () => push(dev, good, {
          // The attacker changes chunk 2 and recomputes its own hash: only the signed total hash catches it.
          transform: (i, p) => { if (i !== 2) return p; const { data } = decodeChunk(p); const d = new Uint8Array(data); d[10]! ^= 0xff; return encodeChunk(i, d); },
        }),
      },
      { name: 'truncated transfer', reason: 'transfer', run: () => push(dev, good, { transform: (i, p) => (i < 3 ? p : undefined) }) },
      { name: 'manifest hash does not match the model', reason: 'hash-mismatch', run: async () => push(dev, await packBundle({ ...b, parts: { ...b.parts, 'model.onnx': otherModel } })) },
      { name: 'wrong input shape', reason: 'input-shape', run: async () => push(dev, await bundleOf({ version: '1.3.0', model: wide, canary: wideCanary })) },
      { name: 'fails its canaries on the analog placement', reason: 'canary-failed', run: async () => push(dev, await bundleOf({ version: '1.3.0', minAgreement: 1, minCosine: 0.99999 })) },
      { name: 'downgrade without allowDowngrade', reason: 'downgrade', run: async () => push(dev, await bundleOf({ version: '1.0.0' })) },
      { name: 'bundle for a newer runtime', reason: 'runtime-too-old', run: async () => push(dev, await bundleOf({ version: '1.3.0', minRuntime: '9.0.0' })) },
    ];
    for (const c of cases) {
      const status = await c.run();
      expect(status, `${c.name}\n${dev.ctx()}`).toMatchObject({ state: 'failed', reason: c.reason, active: { cnn: '1.2.0' } });
      expect(status.detail, c.name).toBeTruthy();
      const retained = await until('the retained deploy/status', () => dev.of('deploy/status').reverse().find((s) => s.id === status.id && s.state === 'failed'), 10_000);
      expect(retained.reason).toBe(c.reason);
      const mark = got.length;
      const r = await dev.resultAfter(mark);
      expect(r.modelVersion, c.name).toBe('1.2.0');
      expect(dev.active(), c.name).toEqual({ cnn: { version: '1.2.0', previous: ['1.1.0'] } });
      expect(dev.versionDirs(), c.name).toEqual(['cnn/1.1.0', 'cnn/1.2.0']);
      expect(existsSync(join(dev.stateDir, 'deploy', 'incoming.bundle')), c.name).toBe(false);
    }
    // The canary failure came with its figures.
    const canaryFail = dev.of('deploy/status').find((s) => s.reason === 'canary-failed')!;
    expect(canaryFail.selfTest).toMatchObject({ servedBy: 'analog', canaries: 32, minAgreement: 1 });
    // With allowDowngrade in the signed command, the older version goes in.
    expect(await push(dev, await bundleOf({ version: '1.0.0' }), { allowDowngrade: true })).toMatchObject({ state: 'active', version: '1.0.0', from: '1.2.0' });
  });

  it('rolls back on a signed command, then serves the previous version', { timeout: 120_000 }, async () => {
    const mark = got.length;
    const c = new MqttClient({ url: broker.url, clientId: 'rollback-sender', clean: true });
    const on = new Promise<void>((r) => c.onConnect(() => r()));
    c.connect();
    await on;
    const { buildCommand } = await import('../../runtime/telemetry/commands.js');
    await c.publish(`${dev.root}/cmd/rollback`, buildCommand({ device: dev.id, name: 'rollback', args: { model: 'cnn' }, signer: operator }), { qos: 1 });
    await c.end();
    const result = await until('the rollback result', () => dev.of('events', mark).find((e) => e.type === 'command-result' && e.command === 'rollback'), 30_000, dev.ctx);
    expect(result).toMatchObject({ ok: true, result: { model: 'cnn', version: '1.2.0', from: '1.0.0' } });
    await until('a result of 1.2.0', () => dev.of('results', mark).find((r) => r.modelVersion === '1.2.0'), 60_000, dev.ctx);
    // The birth names what each model serves now.
    await until('a birth naming 1.2.0', () => dev.of('status', mark).find((b) => b.state === 'online' && b.modelVersions?.cnn === '1.2.0'), 30_000, dev.ctx);
    expect((dev.active() as Record<string, { version: string }>).cnn!.version).toBe('1.2.0');
    expect(dev.versionDirs()).not.toContain('cnn/1.0.0');
    await dev.stop();
  });
});

describeMosquitto('SIGKILL of the device during a deployment', () => {
  // 'switched': in switching, after the pointer names 2.0.0 and before the model is swapped.
  for (const phase of ['receiving', 'verifying', 'staged', 'self-test', 'switching', 'switched'] as const) {
    it(`killed in ${phase}: after a restart it runs one version consistently and reports it`, { timeout: 300_000 }, async () => {
      const dev = new Dev(`crash-${phase}`);
      try {
        dev.start({ FAILPOINT_EDGERUN_DEPLOY: phase });
        await dev.online(got.length);
        const bytes = await bundleOf({ version: '2.0.0' });
        const pushing = push(dev, bytes);
        const died = await dev.exit;
        expect(died.signal, dev.ctx()).toBe('SIGKILL');
        const mark = got.length;
        dev.start();
        const status = await pushing;
        await dev.online(mark);
        const serving = (await dev.resultAfter(got.length)).modelVersion ?? null;
        if (phase === 'receiving') {
          // The transfer resumed where the received bytes ended and the deployment finished.
          expect(status, dev.ctx()).toMatchObject({ state: 'active', version: '2.0.0' });
          expect(dev.of('deploy/status', mark).some((s) => s.transfer?.resumed === true)).toBe(true);
        } else if (phase === 'switched') {
          // The pointer had moved: the new version is what serves, and that is reported.
          expect(status, dev.ctx()).toMatchObject({ state: 'active', version: '2.0.0', detail: 'the switch completed before a restart' });
        } else {
          expect(status, dev.ctx()).toMatchObject({ state: 'rolled-back', reason: 'interrupted', version: '2.0.0' });
        }
        const expected = phase === 'receiving' || phase === 'switched' ? '2.0.0' : null;
        expect(serving).toBe(expected);
        expect(dev.active()?.cnn === undefined ? null : (dev.active()!.cnn as { version: string }).version).toBe(expected);
        expect(dev.versionDirs()).toEqual(expected ? ['cnn/2.0.0'] : []);
        expect(JSON.parse(readFileSync(join(dev.stateDir, 'deploy', 'deploy-state.json'), 'utf8'))).toEqual({ v: 1, phase: 'idle' });
      } finally {
        dev.proc?.kill('SIGKILL');
        await dev.exit;
      }
    });
  }
});
