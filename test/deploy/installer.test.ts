/**
 * The Deployer on real files (FsStorage in a temporary directory), real signed bundles of the CNN and
 * a real host that places models on onnxruntime: which versions stay on disk, what a downgrade to a
 * kept version does (and what its failure leaves), a version whose contents changed, a restart in
 * the middle of such a downgrade, and a deploy command announcing more bytes than the device takes.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { httpDownload } from '../../drivers/http/download.js';
import { FsStorage, FsStorageTree } from '../../drivers/storage/fs-storage.js';
import { DeployAgent } from '../../runtime/deploy/agent.js';
import { parseDataset } from '../../runtime/dataset.js';
import { buildBundle } from '../../runtime/deploy/build.js';
import { packBundle, readBundle } from '../../runtime/deploy/bundle.js';
import { sha256Hex } from '../../runtime/deploy/manifest.js';
import { Deployer, type DeployHost, type DeployStatus } from '../../runtime/deploy/installer.js';
import { encodeManifest, parseManifest } from '../../runtime/deploy/manifest.js';
import { signManifest } from '../../runtime/deploy/signature.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import { DigitalModel } from '../../runtime/scheduler/placement.js';
import { repoRoot } from '../helpers/cli.js';
import { buildModel } from '../helpers/onnx-builder.js';
import { signedBundle, trustOnly, type SignedBundle } from './signed-bundle.js';

const key = nacl.sign.keyPair();
const limits = { maxBytes: 8 << 20, maxModelBytes: 4 << 20 };
let digital: DigitalBackend;
let root: string;
const bundles = new Map<string, SignedBundle>();

beforeAll(async () => {
  digital = new DigitalBackend();
  root = mkdtempSync(join(tmpdir(), 'edgerun-installer-'));
  for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
    bundles.set(version, await signedBundle({ model: 'cnn', version, canaryCount: 4, labels: [], profiles: [], key, digital, limits }));
  }
  // Model ids that contain "-" followed by a version: `a` 1.0.0 / 1.1.0 and `a-1.0.0` 2.0.0 (once the directory `a-1.0.0-2.0.0`).
  for (const [id, version] of [['a', '1.0.0'], ['a', '1.1.0'], ['a-1.0.0', '2.0.0']] as const) {
    bundles.set(`${id}@${version}`, await signedBundle({ model: 'mlp', id, version, canaryCount: 4, labels: [], profiles: [], key, digital, limits }));
  }
}, 120_000);
afterAll(async () => {
  await digital.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** The device as the deployer sees it: one stream feeding the CNN, models placed on onnxruntime; `failPlace` makes placing fail. */
function host(deployer: Deployer, o: { failPlace?: boolean } = {}): DeployHost & { serving: (string | undefined)[] } {
  const serving: (string | undefined)[] = [];
  return {
    serving,
    runtimeVersion: '0.1.0',
    streamInputs: (id) => (['cnn', 'a', 'a-1.0.0'].includes(id) ? [{ name: 'input', dims: [1, 1, 28, 28] }] : undefined),
    activeVersion: (id) => deployer.active[id],
    place: async (id: string, model: LoadedModel) => {
      if (o.failPlace) throw new Error('the accelerator is gone');
      return new DigitalModel(id, await digital.load(model), 'digital');
    },
    activate: async (_id, _model, placed, version) => { await placed?.dispose(); serving.push(version); },
    baseModel: () => undefined,
  };
}

async function open(dir: string, keep = 2): Promise<{ deployer: Deployer; statuses: DeployStatus[] }> {
  const statuses: DeployStatus[] = [];
  const deployer = await Deployer.open({
    root: new FsStorage(join(dir, 'deploy')), versions: new FsStorageTree(join(dir, 'deploy', 'versions')),
    trust: trustOnly(key), limits, keep, report: (s) => { statuses.push(s); },
  });
  return { deployer, statuses };
}

/** Installed versions on disk, as `<model>/<version>`. */
const dirs = (dir: string): string[] => readdirSync(join(dir, 'deploy', 'versions')).flatMap((m) => readdirSync(join(dir, 'deploy', 'versions', m)).map((v) => `${m}/${v}`)).sort();
const pointer = (dir: string): unknown => JSON.parse(readFileSync(join(dir, 'deploy', 'active.json'), 'utf8')).models;
let n = 0;
const install = (d: Deployer, version: string, allowDowngrade = false): Promise<DeployStatus> => d.install(bundles.get(version)!.signed, { id: `t${n++}`, allowDowngrade });

describe('Deployer', () => {
  it('keeps the active version and the keep-1 before it; the others leave the disk', async () => {
    const dir = join(root, 'keep');
    const { deployer } = await open(dir, 2);
    const h = host(deployer);
    deployer.attach(h);
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) expect(await install(deployer, v)).toMatchObject({ state: 'active', version: v });
    expect(h.serving).toEqual(['1.0.0', '1.1.0', '1.2.0']);
    expect(pointer(dir)).toEqual({ cnn: { version: '1.2.0', previous: ['1.1.0'] } });
    expect(dirs(dir)).toEqual(['cnn/1.1.0', 'cnn/1.2.0']);
  });

  it('keeps and prunes the versions of each model apart when a model id contains "-" and a version (a, a-1.0.0)', async () => {
    const dir = join(root, 'ids');
    const { deployer } = await open(dir, 1);
    deployer.attach(host(deployer));
    const put = (key: string) => deployer.install(bundles.get(key)!.signed, { id: `t${n++}` });
    expect(await put('a-1.0.0@2.0.0')).toMatchObject({ state: 'active', model: 'a-1.0.0', version: '2.0.0' });
    expect(await put('a@1.0.0')).toMatchObject({ state: 'active', model: 'a', version: '1.0.0' });
    // Keeping one version of `a` prunes a's 1.0.0, and nothing of `a-1.0.0`.
    expect(await put('a@1.1.0')).toMatchObject({ state: 'active', model: 'a', version: '1.1.0' });
    expect(dirs(dir)).toEqual(['a-1.0.0/2.0.0', 'a/1.1.0']);
    // After a restart both models' active versions load from disk.
    const again = await open(dir, 1);
    const active = await again.deployer.activeModels();
    expect([...active].map(([id, v]) => `${id} ${v.version}`).sort()).toEqual(['a 1.1.0', 'a-1.0.0 2.0.0']);
    expect(again.statuses.filter((s) => s.state === 'failed')).toEqual([]);
  });

  it('a restart moves versions of the earlier layout (versions/<model>-<version>) into versions/<model>/<version>, by their manifests', async () => {
    const dir = join(root, 'layout');
    {
      const { deployer } = await open(dir, 2);
      deployer.attach(host(deployer));
      for (const key of ['a-1.0.0@2.0.0', 'a@1.0.0', 'a@1.1.0']) await deployer.install(bundles.get(key)!.signed, { id: `t${n++}` });
    }
    // What the earlier layout left: `<model>-<version>` directories (a-1.0.0-2.0.0 is a-1.0.0's 2.0.0, not a's 1.0.0-2.0.0),
    // and a leftover of an interrupted staging that no pointer names.
    const versions = join(dir, 'deploy', 'versions');
    const move = (from: string, to: string): void => renameSync(join(versions, from), join(versions, to));
    move('a-1.0.0/2.0.0', 'moving-1');
    move('a/1.0.0', 'moving-2');
    move('a/1.1.0', 'a-1.1.0');
    rmSync(join(versions, 'a-1.0.0'), { recursive: true });
    rmSync(join(versions, 'a'), { recursive: true });
    move('moving-1', 'a-1.0.0-2.0.0');
    move('moving-2', 'a-1.0.0');
    // A staging the earlier layout left half done: parts, no manifest.
    mkdirSync(join(versions, 'a-1.2.0'));
    writeFileSync(join(versions, 'a-1.2.0', 'model.onnx'), 'partial');
    const pointerBefore = pointer(dir);

    const { deployer, statuses } = await open(dir, 2);
    expect(dirs(dir)).toEqual(['a-1.0.0/2.0.0', 'a/1.0.0', 'a/1.1.0']);
    expect(pointer(dir)).toEqual(pointerBefore);
    const active = await deployer.activeModels();
    expect([...active].map(([id, v]) => `${id} ${v.version}`).sort()).toEqual(['a 1.1.0', 'a-1.0.0 2.0.0']);
    expect(statuses.filter((s) => s.state === 'failed')).toEqual([]);
    // The kept 1.0.0 of `a` is whole: a rollback serves it.
    deployer.attach(host(deployer));
    expect(await deployer.rollback('r', 'a')).toMatchObject({ state: 'rolled-back', model: 'a', version: '1.0.0' });
  });

  it('a downgrade to a kept version uses its directory as it is; its failure leaves that version kept for a rollback', async () => {
    const dir = join(root, 'downgrade');
    const { deployer } = await open(dir, 3);
    deployer.attach(host(deployer));
    await install(deployer, '1.0.0');
    await install(deployer, '1.1.0');
    const kept = readFileSync(join(dir, 'deploy', 'versions', 'cnn', '1.0.0', 'model.onnx'));

    // Placing fails during the self-test of the downgrade: 1.1.0 still serves, 1.0.0 is still there to roll back to.
    const failing = host(deployer, { failPlace: true });
    deployer.attach(failing);
    expect(await install(deployer, '1.0.0', true)).toMatchObject({ state: 'failed', reason: 'storage-error', active: { cnn: '1.1.0' } });
    expect(dirs(dir)).toEqual(['cnn/1.0.0', 'cnn/1.1.0']);
    expect(readFileSync(join(dir, 'deploy', 'versions', 'cnn', '1.0.0', 'model.onnx')).equals(kept)).toBe(true);
    const h = host(deployer);
    deployer.attach(h);
    expect(await deployer.rollback('r1', 'cnn')).toMatchObject({ state: 'rolled-back', version: '1.0.0', from: '1.1.0' });
    expect(pointer(dir)).toEqual({ cnn: { version: '1.0.0', previous: [] } });

    // Forward again, then the downgrade succeeds from the kept directory.
    await install(deployer, '1.1.0');
    await install(deployer, '1.2.0');
    expect(await install(deployer, '1.1.0', true)).toMatchObject({ state: 'active', version: '1.1.0', from: '1.2.0' });
    expect(pointer(dir)).toEqual({ cnn: { version: '1.1.0', previous: ['1.2.0', '1.0.0'] } });
    expect(dirs(dir)).toEqual(['cnn/1.0.0', 'cnn/1.1.0', 'cnn/1.2.0']);
  });

  it('refuses the active version again (even with allowDowngrade) and a kept version with other contents; nothing changes', async () => {
    const dir = join(root, 'conflict');
    const { deployer } = await open(dir, 3);
    deployer.attach(host(deployer));
    await install(deployer, '1.0.0');
    await install(deployer, '1.1.0');
    expect(await install(deployer, '1.1.0', true)).toMatchObject({ state: 'failed', reason: 'downgrade', active: { cnn: '1.1.0' } });
    // Version 1.0.0 re-built with other guard thresholds: another manifest under a kept version number.
    const b = bundles.get('1.0.0')!.bundle;
    const other = encodeManifest({ ...b.manifest, guard: { minAgreement: 0.5, minCosine: 0.5 } });
    const changed = await packBundle({ ...b, manifestBytes: other, signature: signManifest(other, key) });
    const before = readFileSync(join(dir, 'deploy', 'versions', 'cnn', '1.0.0', 'manifest.json'));
    const status = await deployer.install(changed, { id: 'changed', allowDowngrade: true });
    expect(status).toMatchObject({ state: 'failed', reason: 'version-conflict', active: { cnn: '1.1.0' } });
    expect(status.detail).toMatch(/version 1\.0\.0 of 'cnn' is kept on this device with other contents/);
    expect(readFileSync(join(dir, 'deploy', 'versions', 'cnn', '1.0.0', 'manifest.json')).equals(before)).toBe(true);
    expect(parseManifest(before).guard).toEqual(b.manifest.guard);
    expect(pointer(dir)).toEqual({ cnn: { version: '1.1.0', previous: ['1.0.0'] } });
  });

  it('a restart during the self-test of a downgrade to a kept version keeps that version on disk', async () => {
    const dir = join(root, 'crash');
    {
      const { deployer } = await open(dir, 3);
      deployer.attach(host(deployer));
      await install(deployer, '1.0.0');
      await install(deployer, '1.1.0');
    }
    // What a SIGKILL during that self-test leaves: the state file says self-test, the pointer is unchanged.
    writeFileSync(join(dir, 'deploy', 'deploy-state.json'), JSON.stringify({ v: 1, phase: 'self-test', deployment: { id: 'd', model: 'cnn', version: '1.0.0', from: '1.1.0' } }));
    const { deployer, statuses } = await open(dir, 3);
    expect(statuses.at(-1)).toMatchObject({ id: 'd', state: 'rolled-back', reason: 'interrupted', active: { cnn: '1.1.0' } });
    expect(dirs(dir)).toEqual(['cnn/1.0.0', 'cnn/1.1.0']);
    deployer.attach(host(deployer));
    expect(await deployer.rollback('r', 'cnn')).toMatchObject({ state: 'rolled-back', version: '1.0.0' });
  });

  it('refuses a deploy command announcing a bundle above the cap before storing a byte; a transfer under way goes on', async () => {
    const dir = join(root, 'size');
    const { deployer, statuses } = await open(dir);
    deployer.attach(host(deployer));
    const incoming = new FsStorage(join(dir, 'deploy'));
    // Never connected: a refusal before the transfer needs no broker.
    const agent = new DeployAgent({ deployer, mqtt: new MqttClient({ url: 'mqtt://127.0.0.1:1', clientId: 'unused' }), address: { prefix: 'edgerun', fleet: 'f', device: 'd' }, storage: incoming, stallMs: 60_000 });
    const ok = await agent.start({ id: 'small', sha256: 'a'.repeat(64), size: 1000, chunkSize: 1024 });
    expect(ok).toEqual({ id: 'small', state: 'receiving' });
    const big = await agent.start({ id: 'huge', sha256: 'b'.repeat(64), size: limits.maxBytes + 1, chunkSize: 1024 });
    expect(big).toEqual({ id: 'huge', state: 'failed' });
    expect(statuses.find((s) => s.id === 'huge')).toMatchObject({ state: 'failed', reason: 'too-large' });
    expect(statuses.find((s) => s.id === 'huge')!.detail).toMatch(/announces \d+ bytes, more than the 8388608/);
    // The first transfer is still the one under way.
    expect(statuses.filter((s) => s.id === 'small').every((s) => s.state === 'receiving')).toBe(true);
    await expect(agent.start({ id: 'third', sha256: 'c'.repeat(64), size: 1000, chunkSize: 1024 })).rejects.toThrow(/another deployment is in progress/);
    await agent.close();
    expect(existsSync(join(dir, 'deploy', 'versions'))).toBe(true);
    expect(dirs(dir)).toEqual([]);
  });

  it('refuses a model whose input has another name than the one the streams feed, and a manifest that misdescribes its model', async () => {
    const dir = join(root, 'describe');
    const { deployer } = await open(dir);
    deployer.attach(host(deployer));
    // The same shape as the CNN's input, under another name: a request built just before the switch would not fit.
    const renamed = loadModel(buildModel({
      nodes: [{ op: 'Flatten', inputs: ['x'], outputs: ['f'] }, { op: 'MatMul', inputs: ['f', 'w'], outputs: ['logits'] }],
      initializers: [{ name: 'w', dims: [784, 10], data: new Float32Array(7840).map((_, i) => Math.sin(i)) }],
      inputs: [{ name: 'x', dims: ['N', 1, 28, 28] }], outputs: [{ name: 'logits', dims: ['N', 10] }],
    }));
    const canary = parseDataset(new Uint8Array(readFileSync(join(repoRoot, 'models/data/canary-64.bin'))));
    const b = await readBundle(await buildBundle({ id: 'cnn', version: '2.0.0', model: renamed, digital, canary, canaryCount: 4, minRuntime: '0.1.0', minAgreement: 0.9, minCosine: 0.9 }), limits);
    const status = await deployer.install(await packBundle({ ...b, signature: signManifest(b.manifestBytes, key) }), { id: 'renamed' });
    expect(status).toMatchObject({ state: 'failed', reason: 'input-shape' });
    expect(status.detail).toBe("the model's input is named 'x', the device's stream feeds 'input'");

    // A signed manifest whose input spec is not the model's (the checks go by the manifest): refused before staging.
    const cnn = bundles.get('1.0.0')!.bundle;
    const lying = encodeManifest({ ...cnn.manifest, model: { ...cnn.manifest.model, inputs: [{ name: 'input', type: 'float32', dims: [1, 1, 28, 28] }] } });
    const lied = await deployer.install(await packBundle({ ...cnn, manifestBytes: lying, signature: signManifest(lying, key) }), { id: 'lying' });
    expect(lied).toMatchObject({ state: 'failed', reason: 'malformed' });
    expect(lied.detail).toMatch(/^manifest\.json names inputs input float32\[1, 1, 28, 28\]; model\.onnx has input float32\[/);
    expect(dirs(dir)).toEqual([]);
  });
});

/** A local HTTP server answering with `handle` (per request, counted from 0); resolves with its URL. */
async function serveHttp(handle: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; ranges: (string | undefined)[]; close(): Promise<void> }> {
  const ranges: (string | undefined)[] = [];
  const server = createServer((req, res) => handle(req, res, ranges.push(req.headers.range) - 1));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cnn.bundle`, ranges,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('DeployAgent by URL (drivers/http/download.ts on a real HTTP server)', () => {
  async function deployFrom(dir: string, url: string, bytes: Uint8Array, stallMs: number): Promise<DeployStatus | undefined> {
    const { deployer } = await open(dir);
    deployer.attach(host(deployer));
    const agent = new DeployAgent({
      deployer, mqtt: new MqttClient({ url: 'mqtt://127.0.0.1:1', clientId: 'unused' }), address: { prefix: 'edgerun', fleet: 'f', device: 'd' },
      storage: new FsStorage(join(dir, 'deploy')), download: httpDownload, stallMs,
    });
    try {
      await agent.start({ id: 'u', sha256: sha256Hex(bytes), size: bytes.byteLength, url });
      return await agent.finished;
    } finally {
      await agent.close();
    }
  }

  it('a server that ignores Range (200, the whole file again) after a cut: the bytes held are skipped and the bundle installs', async () => {
    const bytes = bundles.get('1.3.0')!.signed;
    const http = await serveHttp((_req, res, n) => {
      res.writeHead(200, { 'content-length': bytes.byteLength });
      if (n === 0) res.write(Buffer.from(bytes.subarray(0, 100_000)), () => res.destroy());
      else res.end(Buffer.from(bytes));
    });
    try {
      expect(await deployFrom(join(root, 'url-200'), http.url, bytes, 60_000)).toMatchObject({ state: 'active', version: '1.3.0' });
      expect(http.ranges[0]).toBeUndefined();
      expect(http.ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
    } finally {
      await http.close();
    }
  });

  it('a 404 ends the transfer at once, naming the HTTP status; nothing is left on disk', async () => {
    const bytes = bundles.get('1.3.0')!.signed;
    const http = await serveHttp((_req, res) => { res.writeHead(404, 'Not Found'); res.end(); });
    try {
      // The stall timer (10 min) is not what ends it.
      const status = await deployFrom(join(root, 'url-404'), http.url, bytes, 600_000);
      expect(status).toMatchObject({ state: 'failed', reason: 'transfer' });
      expect(status!.detail).toBe(`GET ${http.url}: HTTP 404 Not Found`);
      expect(http.ranges).toHaveLength(1);
      expect(existsSync(join(root, 'url-404', 'deploy', 'incoming.bundle'))).toBe(false);
    } finally {
      await http.close();
    }
  });

  it('a server that goes silent mid-body: given up after the stall time as a truncated transfer, with the bytes it got', async () => {
    const bytes = bundles.get('1.3.0')!.signed;
    const http = await serveHttp((_req, res) => {
      res.writeHead(200, { 'content-length': bytes.byteLength });
      res.write(Buffer.from(bytes.subarray(0, 50_000))); // and then nothing, connection open
    });
    try {
      const status = await deployFrom(join(root, 'url-silent'), http.url, bytes, 1500);
      expect(status).toMatchObject({ state: 'failed', reason: 'transfer' });
      expect(status!.detail).toMatch(/^truncated transfer: 50000 of \d+ bytes, nothing more for 2 s$/);
    } finally {
      await http.close();
    }
  });
});
