import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { observeValues } from '../runtime/model/observe.js';
import { loadModel } from '../runtime/model/load.js';
import { ModelError } from '../runtime/model/errors.js';
import { inspectModel } from '../runtime/model/inspect.js';
import { linearReluModel, buildModel } from './helpers/onnx-builder.js';

const backend = new DigitalBackend();
afterAll(() => backend.dispose());

describe('DigitalBackend', () => {
  const { bytes, w, b } = linearReluModel(4, 3);
  const model = loadModel(bytes, { source: 'lin.onnx' });

  it('computes relu(x·W + b) and reuses one session across runs', async () => {
    const prepared = await backend.load(model);
    const x = Float32Array.from([0.5, -1, 2, 0.25, 1, 1, 1, 1]);
    for (let repeat = 0; repeat < 3; repeat++) {
      const out = await prepared.run({ x: { type: 'float32', data: x, dims: [2, 4] } });
      const y = out.y!;
      expect(y.dims).toEqual([2, 3]);
      for (let r = 0; r < 2; r++) {
        for (let c = 0; c < 3; c++) {
          let acc = b[c]!;
          for (let k = 0; k < 4; k++) acc += x[r * 4 + k]! * w[k * 3 + c]!;
          expect((y.data as Float32Array)[r * 3 + c]).toBeCloseTo(Math.max(0, acc), 5);
        }
      }
    }
    expect(backend.counters().inferences).toBeGreaterThanOrEqual(3);
    await prepared.dispose();
  });

  it('a buffer fed again (changed in place, or with other dims) gives the outputs of its current content', async () => {
    const prepared = await backend.load(model);
    const x = new Float32Array(8);
    const expected = (rows: number): number[] => Array.from({ length: rows * 3 }, (_, i) => {
      const r = Math.floor(i / 3), c = i % 3;
      let acc = b[c]!;
      for (let k = 0; k < 4; k++) acc += x[r * 4 + k]! * w[k * 3 + c]!;
      return Math.max(0, acc);
    });
    for (const [fill, rows] of [[1, 2], [-0.5, 2], [2, 1]] as const) {
      x.fill(fill);
      const y = (await prepared.run({ x: { type: 'float32', data: rows === 2 ? x : x.subarray(0, 4), dims: [rows, 4] } })).y!;
      expect(y.dims).toEqual([rows, 3]);
      Array.from(y.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(expected(rows)[i]!, 5));
    }
    await prepared.dispose();
  });

  it('accepts an ort.Tensor as it is', async () => {
    const prepared = await backend.load(model);
    const out = await prepared.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) });
    expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(b, (v) => Math.fround(v)));
  });

  it('gives clear errors for a wrong input name, dtype, rank, dim or length', async () => {
    const prepared = await backend.load(model);
    const f32 = (n: number): Float32Array => new Float32Array(n);
    await expect(prepared.run({ z: { type: 'float32', data: f32(4), dims: [1, 4] } })).rejects.toThrow(/unknown input 'z'; the model's inputs are 'x' \(float32 \[N, 4\]\)/);
    await expect(prepared.run({})).rejects.toThrow(/missing input 'x'/);
    await expect(prepared.run({ x: { type: 'int32', data: new Int32Array(4), dims: [1, 4] } })).rejects.toThrow(/'x' must be float32, got int32/);
    await expect(prepared.run({ x: { type: 'float32', data: f32(4), dims: [4] } })).rejects.toThrow(/rank 2.*got \[4\]/);
    await expect(prepared.run({ x: { type: 'float32', data: f32(5), dims: [1, 5] } })).rejects.toThrow(/shape \[N, 4\], got \[1, 5\] \(axis 1\)/);
    await expect(prepared.run({ x: { type: 'float32', data: f32(3), dims: [1, 4] } })).rejects.toThrow(/has 3 values but shape \[1, 4\] needs 4/);
    await expect(prepared.run({ x: { type: 'float32', data: f32(4), dims: [1, 4] } })).resolves.toBeDefined();
  });

  it('wraps an operator onnxruntime cannot run in a ModelError', async () => {
    const bogus = loadModel(buildModel({
      nodes: [{ op: 'NoSuchOperator', inputs: ['x'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: [1] }], outputs: [{ name: 'y', dims: [1] }],
    }), { source: 'bogus.onnx' });
    await expect(backend.load(bogus)).rejects.toThrow(ModelError);
    await expect(backend.load(bogus)).rejects.toThrow(/bogus\.onnx: onnxruntime could not load the model/);
  });

  it('probes the shape of every intermediate value for inspection', async () => {
    const observed = await observeValues(backend, model, 5);
    expect(observed.get('h')).toEqual({ type: 'float32', dims: [5, 3] });
    const summary = inspectModel(model, new Map([...observed].map(([name, v]) => [name, v.dims])));
    expect(summary.nodes[0]).toMatchObject({ op: 'MatMul', mvm: true, params: 12, macs: 5 * 4 * 3 });
    expect(summary.nodes[1]).toMatchObject({ op: 'Add', mvm: false, params: 3 });
    expect(summary.mvmMacShare).toBe(1);
  });
});
