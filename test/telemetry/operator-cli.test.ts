/**
 * The operator's journey with nothing but the CLI, every part real: keys made and exchanged with
 * `edgerun keys`, a signing device (`edgerun serve`) on a real broker, its signed results read with
 * `edgerun listen --require-signed`, and signed commands sent with `edgerun cmd --wait`. The same
 * journey on Mosquitto (MQTT 5) and on RabbitMQ's MQTT plugin (MQTT 3.1.1): no code change between them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { edgerun, lastJson, repoRoot } from '../helpers/cli.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { RabbitMq, describeRabbitMq } from '../helpers/rabbitmq.js';

interface Broker { url: string; dispose(): Promise<void> }

function journey(start: () => Promise<Broker>, protocol: 4 | 5): void {
  let broker: Broker;
  let dir: string;
  let serve: ChildProcess | undefined;
  let serveLog = '';
  const DEVICE = 'journey-1';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgerun-journey-'));
    broker = await start();
  });
  afterAll(async () => {
    serve?.kill('SIGKILL');
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signed results reach a strict listener and signed commands change the running device', { timeout: 240_000 }, async () => {
    const operatorDir = join(dir, 'operator');
    const deviceKeys = join(dir, 'device-keys');
    const listenerKeys = join(dir, 'listener-keys');
    const ok = (r: { code: number; stdout: string; stderr: string }): string => { expect(r.code, r.stderr).toBe(0); return r.stdout; };

    // Keys: the operator's, the device's; each side trusts the other's public key only.
    ok(await edgerun(['keys', 'gen', '--name', 'operator', '--dir', operatorDir]));
    const operatorPub = join(dir, 'operator.pub');
    writeFileSync(operatorPub, ok(await edgerun(['keys', 'show', '--name', 'operator', '--dir', operatorDir, '--json'])));
    ok(await edgerun(['keys', 'trust', operatorPub, '--dir', deviceKeys]));
    ok(await edgerun(['keys', 'gen', '--dir', deviceKeys, '--name', DEVICE, '--file', 'device.key']));
    const devicePub = join(dir, 'device.pub');
    writeFileSync(devicePub, ok(await edgerun(['keys', 'show', '--dir', deviceKeys, '--json'])));
    ok(await edgerun(['keys', 'trust', devicePub, '--dir', listenerKeys]));

    // The device, signing what it publishes.
    serve = spawn(process.execPath, ['bin/edgerun.js', 'serve', '--url', broker.url, '--protocol', String(protocol), '--model', 'models/mlp.onnx', '--rate', '20', '--state-dir', join(dir, 'state')], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, EDGERUN_DEVICE__ID: DEVICE, EDGERUN_DEVICE__FLEET: 'field', EDGERUN_SECURITY__KEY_DIR: deviceKeys, EDGERUN_SECURITY__SIGN: 'true',
        EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_POWER__ROOT: join(repoRoot, 'test/power/fixtures/laptop/sys'),
      },
    });
    serve.stdout!.on('data', (b: Buffer) => { serveLog += b.toString(); });
    serve.stderr!.on('data', (b: Buffer) => { serveLog += b.toString(); });
    const served = new Promise<number | null>((resolve) => serve!.once('exit', (code) => resolve(code)));

    // A strict listener: only messages signed by a trusted key.
    const listen = await edgerun(['listen', '--url', broker.url, '--protocol', String(protocol), '--fleet', 'field', '--kinds', 'results', '--require-signed', '--key-dir', listenerKeys, '--count', '5', '--timeout', '120', '--json']);
    expect(listen.code, `${listen.stderr}\n--- device ---\n${serveLog.slice(-3000)}`).toBe(0);
    const results = listen.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => !('summary' in l));
    expect(results).toHaveLength(5);
    for (const r of results) expect(r).toMatchObject({ device: DEVICE, kind: 'results', signedBy: { name: DEVICE } });
    expect(lastJson(listen.stdout)).toMatchObject({ summary: { unique: 5, rejected: { unsigned: 0, 'unknown-key': 0, 'forged-signature': 0 } } });

    // Commands: pause the stream, then a command the device refuses to carry out.
    const key = join(operatorDir, 'operator.key');
    const cmd = (name: string, args: string) => edgerun(['cmd', DEVICE, name, '--args', args, '--key', key, '--url', broker.url, '--protocol', String(protocol), '--fleet', 'field', '--wait', '60', '--json']);
    const paused = await cmd('pause-stream', '{"stream":"mlp"}');
    expect(paused.code, `${paused.stdout}${paused.stderr}\n--- device ---\n${serveLog.slice(-3000)}`).toBe(0);
    expect(lastJson(paused.stdout)).toMatchObject({ type: 'command-result', command: 'pause-stream', ok: true, signer: { name: 'operator' } });
    const unknownStream = await cmd('pause-stream', '{"stream":"nope"}');
    expect(unknownStream.code).toBe(1);
    expect(lastJson(unknownStream.stdout)).toMatchObject({ type: 'command-result', ok: false, error: expect.stringContaining('nope') });
    const resumed = await cmd('resume-stream', '{"stream":"mlp"}');
    expect(resumed.code, resumed.stderr).toBe(0);

    serve.kill('SIGTERM');
    expect(await served).toBe(0);
  });
}

describeMosquitto('operator CLI journey on Mosquitto (MQTT 5): keys, serve, listen, cmd', () => {
  journey(() => Mosquitto.start({ persistence: false }), 5);
});
describeRabbitMq('operator CLI journey on RabbitMQ (MQTT 3.1.1): keys, serve, listen, cmd', () => {
  journey(RabbitMq.start, 4);
});
