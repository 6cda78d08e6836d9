/**
 * `edgerun serve` with someone else's model: its input is not called "input". The device feeds each
 * sample to the model's own (first) input — before, every inference failed on an unknown input name
 * and the device served nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edgerun } from '../helpers/cli.js';
import { buildModel } from '../helpers/onnx-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-foreign-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('serve with a model whose input has its own name', () => {
  it('feeds the samples to that input and produces results', { timeout: 120_000 }, async () => {
    const model = join(dir, 'pixels.onnx');
    writeFileSync(model, buildModel({
      nodes: [{ op: 'Flatten', inputs: ['pixel_values'], outputs: ['f'] }, { op: 'MatMul', inputs: ['f', 'w'], outputs: ['logits'] }],
      initializers: [{ name: 'w', dims: [784, 10], data: new Float32Array(7840).map((_, i) => Math.sin(i)) }],
      inputs: [{ name: 'pixel_values', dims: ['N', 1, 28, 28] }], outputs: [{ name: 'logits', dims: ['N', 10] }],
    }));
    const r = await edgerun(['serve', '--model', model, '--count', '3', '--rate', '0', '--state-dir', join(dir, 'state')], { EDGERUN_POWER__SENSOR: 'none' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3 results produced and acknowledged');
    expect(r.stdout + r.stderr).not.toContain('inference-failed');
  });
});
