/**
 * `edgerun serve --rate 0` with a model that loads and warms up but fails on every real sample. Before,
 * the stream loop retried on microtasks alone: millions of `inference-failed` events a second, and a
 * SIGTERM handler that never ran. Now the loop backs off while every inference fails.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { startEdgerun } from '../helpers/cli.js';
import { buildModel } from '../helpers/onnx-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-failing-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('serve with a model that fails every inference', () => {
  it('reports the failures at a bounded rate and exits on SIGTERM', { timeout: 120_000 }, async () => {
    const model = join(dir, 'gather.onnx');
    // Gather's index is 2·max(x): 0 for the all-zero warm-up, out of bounds for any image with a bright pixel.
    writeFileSync(model, buildModel({
      nodes: [
        { op: 'ReduceMax', inputs: ['input'], outputs: ['m'], attrs: { keepdims: 0 } },
        { op: 'Mul', inputs: ['m', 'two'], outputs: ['m2'] },
        { op: 'Cast', inputs: ['m2'], outputs: ['i'], attrs: { to: 7 } },
        { op: 'Unsqueeze', inputs: ['i', 'axes'], outputs: ['i1'] },
        { op: 'Gather', inputs: ['table', 'i1'], outputs: ['output'], attrs: { axis: 1 } },
      ],
      initializers: [{ name: 'two', dims: [], data: [2] }, { name: 'axes', dims: [1], data: [0], int64: true }, { name: 'table', dims: [1, 1], data: [1] }],
      inputs: [{ name: 'input', dims: [1, 1, 28, 28] }], outputs: [{ name: 'output', dims: [1, 1] }],
    }));
    const serve = startEdgerun(['serve', '--model', model, '--rate', '0', '--state-dir', join(dir, 'state')], { EDGERUN_POWER__SENSOR: 'none' });
    onTestFinished(() => { if (serve.proc.exitCode === null && serve.proc.signalCode === null) serve.proc.kill('SIGKILL'); });
    let failures = 0;
    serve.proc.stdout!.on('data', (b: Buffer) => { failures += b.toString().split('"inference-failed"').length - 1; });
    for (let i = 0; i < 600 && failures === 0 && serve.proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect(failures, serve.log()).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 3000));
    // About a dozen in these seconds with the back-off (10 ms doubling to 1 s); the old loop printed millions.
    expect(failures, serve.log()).toBeLessThan(200);
    serve.proc.kill('SIGTERM');
    const exited = await Promise.race([serve.exit, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    expect(exited, serve.log()).toEqual({ code: 0, signal: null });
  });
});
