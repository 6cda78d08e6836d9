/**
 * `edgerun serve` with models other than the bundled ones, as a real process on the embedded broker:
 * it feeds each model's own input (whatever its name), and refuses at start — one line, exit 2,
 * nothing left running — a model the data set cannot feed, instead of failing every inference.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edgerun } from '../helpers/cli.js';
import { buildModel } from '../helpers/onnx-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-serve-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Flatten → MatMul to 10 classes, reading an input named `input` of the given dims. */
function classifier(input: string, dims: number[]): string {
  const file = join(dir, `${input}-${dims.join('x')}.onnx`);
  const features = dims.slice(1).reduce((a, b) => a * b, 1);
  writeFileSync(file, buildModel({
    nodes: [{ op: 'Flatten', inputs: [input], outputs: ['flat'] }, { op: 'MatMul', inputs: ['flat', 'W'], outputs: ['logits'] }],
    inputs: [{ name: input, dims }], outputs: [{ name: 'logits', dims: [dims[0]!, 10] }],
    initializers: [{ name: 'W', dims: [features, 10], data: new Float32Array(features * 10).map((_, i) => ((i * 7919) % 13) / 13 - 0.5) }],
  }));
  return file;
}

const serve = (model: string, stateDir: string): ReturnType<typeof edgerun> =>
  edgerun(['serve', '--model', model, '--count', '3', '--quiet', '--state-dir', join(dir, stateDir)], { EDGERUN_POWER__SENSOR: 'none', EDGERUN_PLACEMENT__DEFAULT: 'digital' });

describe('serve with other people\'s models', () => {
  it('feeds a model whose input is not called "input" (every inference failed with "unknown input \'input\'")', { timeout: 180_000 }, async () => {
    const r = await serve(classifier('data', [1, 1, 28, 28]), 'named-data');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3 results produced and acknowledged');
    expect(r.stdout).not.toContain('inference-failed');
  });

  it('refuses at start a model whose input the data set\'s samples do not fit', { timeout: 180_000 }, async () => {
    const r = await serve(classifier('images', [1, 3, 32, 32]), 'wrong-shape');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^edgerun: model 'images-1x3x32x32' fed from .*fashion-mnist-test-2000\.bin: input 'images' must have shape \[1, 3, 32, 32\], got \[1, 1, 28, 28\] \(axis 1\)$/)]);
  });
});
