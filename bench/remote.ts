/**
 * The out-of-process accelerator's cost, side by side with the in-process emulator (same profile
 * and seed, so the same arithmetic): per inference of mlp.onnx on the hybrid backend, and per MVM
 * round trip on one tile (a 256×256 block, and an 8×8 block where the round trip is nearly all).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../runtime/model/load.js';
import type { CrossbarDriver } from '../runtime/accelerator.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { RemoteCrossbarClient } from '../drivers/remote/client.js';
import { unixSocketTransport } from '../drivers/remote/transport.js';
import { compare, fmt, report } from './measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function startDevice(socket: string, profile: string, seed: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['bin/edgerun.js', 'accel-emulator', '--socket', socket, '--profile', profile, '--seed', String(seed)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) resolve(child); });
    child.once('exit', (code) => reject(new Error(`accel-emulator exited with ${code}`)));
  });
}

export async function main(): Promise<void> {
  console.log('\n# remote accelerator: accel-emulator process over a Unix socket vs the in-process emulator (pcm, same seed)');
  const socket = join(mkdtempSync(join(tmpdir(), 'edgerun-bench-')), 'accel.sock');
  const child = await startDevice(socket, 'pcm', 1);
  const remote = await RemoteCrossbarClient.connect(unixSocketTransport(socket), { timeoutMs: 10_000 });
  const local = new CrossbarEmulator('pcm', { seed: 1 });
  try {
    const digital = new DigitalBackend();
    const model = loadModel(await readFile(new URL('../models/mlp.onnx', import.meta.url)), { source: 'mlp' });
    const [inProcess, outOfProcess] = await Promise.all([local, remote].map((driver) => new AnalogBackend({ digital, driver }).load(model)));
    const feeds = { input: { type: 'float32', data: Float32Array.from({ length: 784 }, (_, i) => (i % 97) / 97), dims: [1, 1, 28, 28] } };
    const inf = await compare({ baseline: () => inProcess!.run(feeds), candidate: () => outOfProcess!.run(feeds) }, 11, 100, 100);
    const mvms = inProcess!.runners.reduce((a, r) => a + r.matrices.reduce((b, m) => b + m.blocks.length, 0), 0);
    report(`mlp inference: in-process µs / remote µs (${mvms} tile MVMs each)`, `${fmt(inf.baselineUs, 0)} / ${fmt(inf.candidateUs, 0)}`);
    report('mlp inference: remote / in-process', `${fmt(inf.ratio)}×`);
    await digital.dispose();

    for (const [rows, cols] of [[256, 256], [8, 8]] as const) {
      const tile = rows === 8 ? 60 : 61;
      const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 0.5);
      const x = Float32Array.from({ length: rows }, (_, i) => Math.cos(i));
      for (const d of [local, remote] as CrossbarDriver[]) await d.program(tile, w, rows, cols);
      const r = await compare({ baseline: () => local.mvm(tile, x, 1), candidate: () => remote.mvm(tile, x, 1) }, 11, 500, 500);
      report(`MVM ${rows}×${cols}, batch 1: in-process µs / remote µs`, `${fmt(r.baselineUs, 1)} / ${fmt(r.candidateUs, 1)}`);
      report(`MVM ${rows}×${cols}: round-trip cost (remote − in-process) µs`, fmt(r.candidateUs - r.baselineUs, 1));
    }
  } finally {
    await remote.dispose();
    child.kill('SIGTERM');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
