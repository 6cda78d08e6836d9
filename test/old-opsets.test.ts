/**
 * Models stamped with an ai.onnx opset older than 7 (PyTorch's own backend-test exports are opset
 * 6): run with a warning when onnxruntime can create a session for them, refused with onnxruntime's
 * reason on one line when it cannot. Through the real CLI and a real onnxruntime-web session.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { edgerun, lastJson } from './helpers/cli.js';
import { buildModel } from './helpers/onnx-builder.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgerun-opset-'));
  const io = { inputs: [{ name: 'x', dims: [1, 4] }], outputs: [{ name: 'y', dims: [1, 4] }] };
  // onnxruntime registers Relu and Sigmoid from opset 6; Add only from 7 (its opset-6 form had a broadcast attribute).
  await writeFile(join(dir, 'relu6.onnx'), buildModel({ opset: 6, irVersion: 3, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Sigmoid', inputs: ['r'], outputs: ['y'] }], ...io }));
  await writeFile(join(dir, 'add6.onnx'), buildModel({ opset: 6, irVersion: 3, nodes: [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }], ...io }));
  return () => rm(dir, { recursive: true, force: true });
});

describe('models older than opset 7', () => {
  it('runs one that onnxruntime can load, with a warning', async () => {
    const input = join(dir, 'x.json');
    await writeFile(input, JSON.stringify({ x: { dims: [1, 4], data: [-1, 0, 2, -3] } }));
    const r = await edgerun(['run', join(dir, 'relu6.onnx'), '--input', input, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: .*relu6\.onnx: operator set ai\.onnx version 6 is older than 7, the oldest onnxruntime guarantees; onnxruntime loads this model/);
    const y = (lastJson(r.stdout).outputs as Record<string, { data: number[] }>).y!.data;
    expect(y.map((v) => +v.toFixed(4))).toEqual([0.5, 0.5, 0.8808, 0.5]);
  });

  it('refuses one that onnxruntime cannot load, with its reason on one line', async () => {
    const r = await edgerun(['run', join(dir, 'add6.onnx'), '--random']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/add6\.onnx: operator set ai\.onnx version 6 is older than 7, the oldest onnxruntime guarantees, and onnxruntime cannot run this model: .*Could not find an implementation for Add\(6\)/);
  });

  it('still refuses an opset no onnxruntime implements', async () => {
    await writeFile(join(dir, 'future.onnx'), buildModel({ opset: 99, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', dims: [1, 4] }], outputs: [{ name: 'y', dims: [1, 4] }] }));
    const r = await edgerun(['inspect', join(dir, 'future.onnx')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/operator set ai\.onnx version 99 is not supported \(expected 1–24\)/);
  });
});
