import { afterAll, describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { PartitionError } from '../../runtime/model/partition.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import type { TensorData } from '../../runtime/model/tensor.js';
import { resolveConfig } from '../../runtime/config.js';
import { checkDirectory } from '../../apps/edgerun/commands/check.js';
import { buildModel, type BuildModel, type BuildNode } from '../helpers/onnx-builder.js';
import { Random } from '../../drivers/crossbar/random.js';

const digital = new DigitalBackend();
afterAll(() => digital.dispose());
const rng = new Random(99);
const randn = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * 0.5);

/** Max |analog − digital| over max |digital|, with the ideal profile. */
async function idealError(model: LoadedModel, feeds: Record<string, TensorData>, profile = 'ideal'): Promise<number> {
  const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile) });
  const a = await (await analog.load(model)).run(feeds);
  const d = await (await digital.load(model)).run(feeds);
  let err = 0;
  let max = 0;
  for (const name of Object.keys(d)) {
    const ad = a[name]!.data as Float32Array;
    const dd = d[name]!.data as Float32Array;
    expect(a[name]!.dims).toEqual(d[name]!.dims);
    for (let i = 0; i < dd.length; i++) { err = Math.max(err, Math.abs(ad[i]! - dd[i]!)); max = Math.max(max, Math.abs(dd[i]!)); }
  }
  await analog.dispose();
  return err / Math.max(max, 1e-12);
}

function single(op: BuildNode, weights: BuildModel['initializers'], inDims: (number | string)[], outDims?: (number | string)[], extra: BuildNode[] = []): LoadedModel {
  return loadModel(buildModel({ nodes: [op, ...extra], initializers: weights, inputs: [{ name: 'x', dims: inDims }], outputs: [{ name: 'y', dims: outDims }] }));
}
const feed = (dims: number[]): Record<string, TensorData> => ({ x: { type: 'float32', data: randn(dims.reduce((a, b) => a * b, 1)), dims } });

describe('hybrid plan, ideal profile ≡ onnxruntime', () => {
  const gemmCases: [string, Record<string, number | { float: number }>, number[] | null][] = [
    ['plain', {}, [5]],
    ['transB', { transB: 1 }, [5]],
    ['transA', { transA: 1 }, [5]],
    ['transA+transB alpha beta', { transA: 1, transB: 1, alpha: 0.5, beta: { float: 2 } }, [3, 5]],
    ['C broadcast [M,1]', { alpha: 1.5 }, [3, 1]],
    ['C scalar', { beta: 0.25 }, [1]],
    ['no C', {}, null],
  ];
  it.each(gemmCases)('Gemm %s', async (_, attrs, cDims) => {
    const [m, k, n] = [3, 7, 5];
    const aDims = attrs.transA ? [k, m] : [m, k];
    const bDims = attrs.transB ? [n, k] : [k, n];
    const inits = [{ name: 'B', dims: bDims, data: randn(k * n) }];
    if (cDims) inits.push({ name: 'C', dims: cDims, data: randn(cDims.reduce((a, b) => a * b, 1)) });
    const model = single({ op: 'Gemm', inputs: cDims ? ['x', 'B', 'C'] : ['x', 'B'], outputs: ['y'], attrs }, inits, aDims, [m, n]);
    expect(await idealError(model, feed(aDims))).toBeLessThanOrEqual(1e-4);
  });

  it.each([[[4, 8]], [[2, 3, 5, 8]], [[8]]])('MatMul with activations %j × [8, 6]', async (dims) => {
    // The leading (batch) dim is symbolic, the rest fixed, as exporters write them.
    const model = single({ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }, [{ name: 'W', dims: [8, 6], data: randn(48) }], dims.map((d, i) => (i === 0 && dims.length > 1 ? 'N' : d)));
    expect(await idealError(model, feed(dims))).toBeLessThanOrEqual(1e-4);
  });

  const convCases: [string, number[], number[], Record<string, number | number[] | string>][] = [
    ['1-D stride 2 pad 1 dilation 2', [2, 3, 20], [4, 3, 3], { strides: [2], pads: [1, 1], dilations: [2] }],
    ['2-D asymmetric pads', [1, 3, 9, 8], [5, 3, 3, 2], { pads: [0, 1, 2, 0], strides: [2, 1] }],
    ['2-D dilation', [2, 2, 10, 10], [3, 2, 3, 3], { dilations: [2, 3] }],
    ['2-D SAME_UPPER stride 2', [1, 2, 7, 7], [4, 2, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }],
    ['2-D SAME_LOWER', [1, 2, 6, 5], [4, 2, 2, 2], { auto_pad: 'SAME_LOWER' }],
    ['2-D VALID', [1, 2, 6, 5], [4, 2, 3, 3], { auto_pad: 'VALID' }],
    ['2-D grouped', [2, 4, 6, 6], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }],
    ['2-D depthwise', [1, 4, 6, 6], [4, 1, 3, 3], { group: 4 }],
    ['3-D', [1, 2, 5, 6, 6], [3, 2, 2, 3, 3], { strides: [1, 2, 2], pads: [0, 1, 1, 1, 1, 1] }],
  ];
  it.each(convCases)('Conv %s', async (_, xDims, wDims, attrs) => {
    const outC = wDims[0]!;
    const model = single({ op: 'Conv', inputs: ['x', 'W', 'B'], outputs: ['y'], attrs }, [
      { name: 'W', dims: wDims, data: randn(wDims.reduce((a, b) => a * b, 1)) }, { name: 'B', dims: [outC], data: randn(outC) },
    ], xDims.map((d, i) => (i === 0 ? 'N' : d)));
    expect(await idealError(model, feed(xDims))).toBeLessThanOrEqual(1e-4);
  });

  it('interleaves analog and digital parts: MatMul → Relu → MatMul → Softmax → Gemm', async () => {
    const model = loadModel(buildModel({
      nodes: [
        { op: 'MatMul', inputs: ['x', 'W1'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['b'] },
        { op: 'MatMul', inputs: ['b', 'W2'], outputs: ['c'] }, { op: 'Softmax', inputs: ['c'], outputs: ['d'], attrs: { axis: -1 } },
        { op: 'Gemm', inputs: ['d', 'W3', 'C3'], outputs: ['y'], attrs: { transB: 1 } },
      ],
      initializers: [{ name: 'W1', dims: [10, 16], data: randn(160) }, { name: 'W2', dims: [16, 12], data: randn(192) }, { name: 'W3', dims: [4, 12], data: randn(48) }, { name: 'C3', dims: [4], data: randn(4) }],
      inputs: [{ name: 'x', dims: ['N', 10] }], outputs: [{ name: 'y', dims: ['N', 4] }],
    }));
    expect(await idealError(model, feed([3, 10]))).toBeLessThanOrEqual(1e-4);
    // Without the periphery the Relu is an onnxruntime segment of its own; with it, fc1 applies it.
    const off = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal'), periphery: false });
    expect((await off.load(model)).plan.steps.map((s) => s.kind)).toEqual(['analog', 'digital', 'analog', 'digital', 'analog']);
    await off.dispose();
    const on = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    expect((await on.load(model)).plan.steps.map((s) => s.kind)).toEqual(['analog', 'analog', 'digital', 'analog']);
    await on.dispose();
  });

  it('passes a layout-only segment (Flatten, Reshape) on as a view at the observed dims and runs it in onnxruntime otherwise', async () => {
    const model = loadModel(buildModel({
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['f'] }, { op: 'Gemm', inputs: ['f', 'W1'], outputs: ['g'] },
        { op: 'Reshape', inputs: ['g', 'shape'], outputs: ['r'] }, { op: 'MatMul', inputs: ['r', 'W2'], outputs: ['y'] },
      ],
      initializers: [{ name: 'W1', dims: [24, 6], data: randn(144) }, { name: 'W2', dims: [3, 4], data: randn(12) }, { name: 'shape', dims: [3], data: [-1, 2, 3], int64: true }],
      inputs: [{ name: 'x', dims: ['N', 2, 3, 4] }], outputs: [{ name: 'y', dims: ['N', 2, 4] }],
    }));
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    const hybrid = await analog.load(model);
    expect(hybrid.plan.steps.map((s) => (s.kind === 'digital' ? (s.view ? 'view' : 'digital') : s.kind))).toEqual(['view', 'analog', 'view', 'analog']);
    const sessionRuns = (): number => digital.counters().inferences;
    for (const [batch, runs] of [[1, 0], [3, 2]] as const) {
      const feeds = feed([batch, 2, 3, 4]);
      const before = sessionRuns();
      const out = await hybrid.run(feeds);
      expect(sessionRuns() - before).toBe(runs);
      const d = await (await digital.load(model)).run(feeds);
      expect(out.y!.dims).toEqual(d.y!.dims);
      const err = Math.max(...Array.from(out.y!.data as Float32Array, (v, i) => Math.abs(v - (d.y!.data as Float32Array)[i]!)));
      expect(err).toBeLessThanOrEqual(1e-4);
    }
    await analog.dispose();
  });

  it('outputs a caller receives are not overwritten by the next run (layers reuse buffers only for values inside a run)', async () => {
    const model = loadModel(buildModel({
      nodes: [
        { op: 'Gemm', inputs: ['x', 'W1'], outputs: ['g'] }, { op: 'Reshape', inputs: ['g', 'shape'], outputs: ['r'] },
        { op: 'MatMul', inputs: ['r', 'W2'], outputs: ['m'] }, { op: 'MatMul', inputs: ['m', 'W3'], outputs: ['y'] },
      ],
      initializers: [{ name: 'W1', dims: [12, 6], data: randn(72) }, { name: 'W2', dims: [3, 5], data: randn(15) }, { name: 'W3', dims: [5, 4], data: randn(20) }, { name: 'shape', dims: [3], data: [-1, 2, 3], int64: true }],
      inputs: [{ name: 'x', dims: ['N', 12] }], outputs: [{ name: 'g', dims: ['N', 6] }, { name: 'y', dims: ['N', 2, 4] }],
    }));
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    const hybrid = await analog.load(model);
    expect(hybrid.plan.steps.map((s) => (s.kind === 'digital' ? (s.view ? 'view' : 'digital') : s.kind))).toEqual(['analog', 'view', 'analog', 'analog']);
    const first = await hybrid.run(feed([1, 12]));
    const kept = { g: Array.from(first.g!.data as Float32Array), y: Array.from(first.y!.data as Float32Array) };
    const feeds = feed([1, 12]);
    const second = await hybrid.run(feeds);
    expect(Array.from(first.g!.data as Float32Array)).toEqual(kept.g); // a model output that later layers read too
    expect(Array.from(first.y!.data as Float32Array)).toEqual(kept.y);
    expect(Array.from(second.g!.data as Float32Array)).not.toEqual(kept.g);
    expect(Array.from(second.y!.data as Float32Array)).not.toEqual(kept.y);
    // m, inside the run, went through the runner's reused buffer; the outputs still equal onnxruntime's.
    const d = await (await digital.load(model)).run(feeds);
    for (const name of ['g', 'y']) {
      const want = d[name]!.data as Float32Array;
      expect(Math.max(...Array.from(second[name]!.data as Float32Array, (v, i) => Math.abs(v - want[i]!))), name).toBeLessThanOrEqual(1e-4);
    }
    await analog.dispose();
  });

  it.each(['mlp', 'cnn'])('trained %s: runs started together give what they give one after another', async (name) => {
    const model = loadModel(await readFile(`models/${name}.onnx`), { source: name });
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    const hybrid = await analog.load(model);
    const images = Array.from({ length: 6 }, () => ({ input: { type: 'float32', data: Float32Array.from({ length: 784 }, () => rng.uniform()), dims: [1, 1, 28, 28] } }));
    const oneByOne: number[][] = [];
    for (const feeds of images) oneByOne.push(Array.from((await hybrid.run(feeds)).logits!.data as Float32Array));
    const together = await Promise.all(images.map(async (feeds) => Array.from((await hybrid.run(feeds)).logits!.data as Float32Array)));
    expect(together).toEqual(oneByOne);
    await analog.dispose();
  });

  it('keeps a MatMul of two dynamic tensors digital, with the reason', async () => {
    const model = loadModel(buildModel({
      nodes: [{ op: 'MatMul', inputs: ['x', 'z'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: [2, 3] }, { name: 'z', dims: [3, 2] }], outputs: [{ name: 'y', dims: [2, 2] }],
    }));
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    const hybrid = await analog.load(model);
    expect(hybrid.planRows()[0]).toMatchObject({ target: 'digital', reason: expect.stringMatching(/both operands dynamic/) });
    const out = await hybrid.run({ x: { type: 'float32', data: randn(6), dims: [2, 3] }, z: { type: 'float32', data: randn(6), dims: [3, 2] } });
    expect(out.y!.dims).toEqual([2, 2]);
    await analog.dispose();
  });

  it.each(['mlp', 'cnn'])('trained %s', async (name) => {
    const model = loadModel(await readFile(`models/${name}.onnx`), { source: name });
    expect(await idealError(model, { input: { type: 'float32', data: Float32Array.from({ length: 8 * 784 }, () => rng.uniform()), dims: [8, 1, 28, 28] } })).toBeLessThanOrEqual(1e-4);
  });
});

describe('ONNX test-data directories from PyTorch on --backend analog --profile ideal', async () => {
  const dirs = (await readdir('models/conformance')).sort();
  const config = resolveConfig({ flags: { analog: { profile: 'ideal' } } });
  it.each(dirs)('%s', async (dir) => {
    const reports = await checkDirectory(`models/conformance/${dir}`, { backend: 'analog', rtol: 1e-3, atol: 1e-5 }, config);
    for (const r of reports) expect(r, `${dir}/${r.name}`).toMatchObject({ pass: true, mismatches: 0 });
  });
});

describe('device limits', () => {
  const big = () => single({ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }, [{ name: 'W', dims: [600, 300], data: randn(180_000) }], ['N', 600], ['N', 300]);

  it('a layer too large for the device stays digital with the reason', async () => {
    const driver = new CrossbarEmulator('pcm', { overrides: { tile: { count: 4 } } });
    const analog = new AnalogBackend({ digital, driver });
    const hybrid = await analog.load(big());
    expect(hybrid.planRows()[0]).toMatchObject({ target: 'digital', reason: 'needs 6 tiles, device has 4 free' });
    expect(await idealError(big(), feed([2, 600]), 'ideal')).toBeLessThanOrEqual(1e-4);
    await analog.dispose();
  });

  it('or refuses the model when digital fallback of oversized layers is off', async () => {
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('pcm', { overrides: { tile: { count: 4 } } }), fallbackOversized: false });
    await expect(analog.load(big())).rejects.toThrow(PartitionError);
    await expect(analog.load(big())).rejects.toThrow(/node 'MatMul_0' \(MatMul\) needs 6 tiles, device has 4 free/);
  });

  it('releases every tile it allocated when programming fails, and loads again once the device is back', async () => {
    const driver = new CrossbarEmulator('pcm', { overrides: { tile: { count: 6 } } });
    const analog = new AnalogBackend({ digital, driver });
    driver.setHealth('unhealthy', 'test');
    await expect(analog.load(big())).rejects.toThrow(/unhealthy/);
    expect(analog.allocator.available).toBe(6);
    driver.setHealth('ok');
    const hybrid = await analog.load(big());
    expect(hybrid.planRows()[0]).toMatchObject({ target: 'analog' });
    await analog.dispose();
  });

  it('frees tiles when a model is disposed', async () => {
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('pcm', { overrides: { tile: { count: 6 } } }) });
    const first = await analog.load(big());
    expect(analog.allocator.available).toBe(0);
    await first.dispose();
    expect(analog.allocator.available).toBe(6);
  });
});
