/**
 * RemoteCrossbarClient against the real server over real Unix sockets and a real child process on
 * stdio: the same device seed gives bit-identical results to the in-process emulator; errors,
 * timeouts and lost connections become AcceleratorErrors; the client reconnects on demand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { RemoteCrossbarClient } from '../../drivers/remote/client.js';
import { listenUnix, type UnixServer } from '../../drivers/remote/server.js';
import { childProcessTransport, unixSocketTransport } from '../../drivers/remote/transport.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { AcceleratorError } from '../../runtime/scheduler/failure.js';
import { edgerun, lastJson, repoRoot } from '../helpers/cli.js';
import { fixtureModel, imageFeeds, values } from '../scheduler/fixtures.js';
import { tempSocketPath } from './device-process.js';

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

async function serve(profile = 'pcm', seed = 3): Promise<UnixServer> {
  const server = await listenUnix(tempSocketPath(), new CrossbarEmulator(profile, { seed }));
  cleanup.push(() => server.close());
  return server;
}

async function client(path: string, options = {}): Promise<RemoteCrossbarClient> {
  const c = await RemoteCrossbarClient.connect(unixSocketTransport(path), options);
  cleanup.push(() => c.dispose());
  return c;
}

const weights = (rows: number, cols: number, seed = 1): Float32Array => Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
const inputs = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11));

describe('RemoteCrossbarClient', () => {
  it('is bit-identical to the in-process emulator with the same profile and seed', async () => {
    const server = await serve('pcm', 3);
    const remote = await client(server.path);
    const local = new CrossbarEmulator('pcm', { seed: 3 });
    expect(remote.info()).toEqual(local.info());
    for (const d of [remote, local]) {
      await d.program(2, weights(200, 100), 200, 100);
      await d.program(5, weights(30, 256, 2), 30, 256);
    }
    expect(Array.from(await remote.mvm(2, inputs(200 * 7), 7))).toEqual(Array.from(await local.mvm(2, inputs(200 * 7), 7)));
    for (const d of [remote, local]) { await d.setAge(86_400 * 365); await d.calibrate(2); }
    expect(Array.from(await remote.mvm(2, inputs(200), 1))).toEqual(Array.from(await local.mvm(2, inputs(200), 1)));
    expect(Array.from(await remote.mvm(5, inputs(30 * 3), 3))).toEqual(Array.from(await local.mvm(5, inputs(30 * 3), 3)));
    const [rc, lc] = [await remote.readConductances(5), await local.readConductances(5)];
    expect([rc.rows, rc.cols, Array.from(rc.gPlus), Array.from(rc.gMinus)]).toEqual([lc.rows, lc.cols, Array.from(lc.gPlus), Array.from(lc.gMinus)]);
    expect(await remote.counters()).toEqual(await local.counters());
    expect(await remote.temperature()).toBe(await local.temperature());
    expect(await remote.health()).toEqual({ state: 'ok' });
  });

  it('runs a whole hybrid model remotely with the same outputs as in-process', async () => {
    const server = await serve('pcm', 4);
    const digital = new DigitalBackend();
    cleanup.push(() => digital.dispose());
    const model = fixtureModel('cnn');
    const remote = await new AnalogBackend({ digital, driver: await client(server.path) }).load(model);
    const local = await new AnalogBackend({ digital, driver: new CrossbarEmulator('pcm', { seed: 4 }) }).load(model);
    for (const i of [0, 1]) expect(values((await remote.run(imageFeeds(i, 4))).logits)).toEqual(values((await local.run(imageFeeds(i, 4))).logits));
  });

  it('splits an MVM batch larger than a frame into several requests', async () => {
    const server = await serve('ideal');
    const remote = await client(server.path, { maxPayload: 4096 });
    const local = new CrossbarEmulator('ideal');
    for (const d of [remote, local]) await d.program(0, weights(64, 48), 64, 48);
    const before = remote.stats().requests;
    const y = await remote.mvm(0, inputs(64 * 100), 100);
    expect(remote.stats().requests - before).toBeGreaterThan(1);
    expect(Array.from(y)).toEqual(Array.from(await local.mvm(0, inputs(64 * 100), 100)));
  });

  it('turns a device error into an AcceleratorError and keeps the connection', async () => {
    const server = await serve();
    const remote = await client(server.path);
    const err = await remote.mvm(9, inputs(10), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcceleratorError);
    expect(err).toMatchObject({ kind: 'driver-error', message: expect.stringMatching(/DEVICE_ERROR: tile 9 is not programmed/) });
    await expect(remote.program(0, weights(2, 2), 3, 3)).rejects.toThrow(/a 3×3 block needs 9/);
    await expect(remote.setAge(-1)).rejects.toThrow(/finite number of seconds/);
    expect(await remote.health()).toEqual({ state: 'ok' });
    expect(remote.stats()).toMatchObject({ connects: 1, disconnects: 0 });
  });

  it('times out on a device that accepts connections but never answers', async () => {
    const path = tempSocketPath();
    const silent: Server = createServer((s) => { s.on('data', () => undefined); s.on('error', () => undefined); });
    await new Promise<void>((r) => silent.listen(path, r));
    cleanup.push(() => new Promise((r) => silent.close(r)));
    const err = await RemoteCrossbarClient.connect(unixSocketTransport(path), { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'timeout' });
  });

  it('fails in-flight requests when the connection drops, then reconnects on demand and notices the restart', async () => {
    const path = tempSocketPath();
    let server = await listenUnix(path, new CrossbarEmulator('ideal'));
    const remote = await client(path, { timeoutMs: 1000 });
    await remote.program(0, weights(8, 8), 8, 8);
    const bootBefore = remote.bootId;
    const inFlight = remote.mvm(0, inputs(8 * 1000), 1000);
    await server.close(); // the device process goes away, with a request outstanding
    expect(await inFlight.catch((e: unknown) => e)).toMatchObject({ kind: 'connection-lost' });
    await expect(remote.health()).rejects.toMatchObject({ kind: 'connection-lost' });
    server = await listenUnix(path, new CrossbarEmulator('ideal')); // a new device process, empty tiles
    cleanup.push(() => server.close());
    expect(await remote.health()).toEqual({ state: 'ok' });
    expect(remote.bootId).not.toBe(bootBefore);
    expect(remote.stats()).toMatchObject({ connects: 2, restartsSeen: 1, connected: true });
    await expect(remote.mvm(0, inputs(8), 1)).rejects.toThrow(/not programmed/);
  });

  it('speaks the protocol on the stdio of a child process', async () => {
    const transport = childProcessTransport(process.execPath, ['bin/edgerun.js', 'accel-emulator', '--stdio', '--profile', 'pcm', '--seed', '3'], { cwd: repoRoot });
    const remote = await RemoteCrossbarClient.connect(transport, { timeoutMs: 20_000 });
    cleanup.push(() => { transport.child()?.kill('SIGKILL'); return remote.dispose(); });
    const local = new CrossbarEmulator('pcm', { seed: 3 });
    for (const d of [remote, local]) await d.program(1, weights(16, 4), 16, 4);
    expect(Array.from(await remote.mvm(1, inputs(32), 2))).toEqual(Array.from(await local.mvm(1, inputs(32), 2)));
    expect(remote.info().driver).toBe('crossbar-emulator');
  });

  it('the CLI uses the accelerator process named by config remote.socket, with the same results as in-process', async () => {
    const server = await serve('pcm', 5);
    const args = ['run', 'models/mlp.onnx', '--random', '--backend', 'analog', '--profile', 'pcm', '--seed', '5', '--json'];
    const remote = await edgerun(args, { EDGERUN_REMOTE__SOCKET: server.path });
    const local = await edgerun(args);
    expect(remote.code, remote.stderr).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    expect(lastJson(remote.stdout).outputs).toEqual(lastJson(local.stdout).outputs);
    const missing = await edgerun(args, { EDGERUN_REMOTE__SOCKET: tempSocketPath('nobody-listens') });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nobody-listens/);
  });

  it('eval --age runs against a remote accelerator with the accuracies of the in-process one; profile overrides are refused', { timeout: 240_000 }, async () => {
    const server = await serve('pcm', 0);
    const args = ['eval', 'models/mlp.onnx', '--data', 'models/data/canary-64.bin', '--backend', 'analog', '--profile', 'pcm', '--seed', '0', '--age', '1s,1y', '--json'];
    const remote = await edgerun(args, { EDGERUN_REMOTE__SOCKET: server.path });
    expect(remote.code, remote.stderr).toBe(0);
    const local = await edgerun(args);
    expect(local.code, local.stderr).toBe(0);
    expect(lastJson(remote.stdout).table).toEqual(lastJson(local.stdout).table);
    const overridden = await edgerun([...args, '--gdc', 'off'], { EDGERUN_REMOTE__SOCKET: server.path });
    expect(overridden.code).toBe(2);
    expect(overridden.stderr).toMatch(/--gdc and --adc-bits change the in-process emulator; the accelerator at remote\.socket .* keeps its own settings/);
  });

  it('replaces a stale socket file but never a live one or a non-socket', async () => {
    const server = await serve('ideal');
    await expect(listenUnix(server.path, new CrossbarEmulator('ideal'))).rejects.toThrow(/already listening/);
    const file = tempSocketPath('not-a-socket');
    writeFileSync(file, 'data');
    await expect(listenUnix(file, new CrossbarEmulator('ideal'))).rejects.toThrow(/not a socket/);
  });
});
