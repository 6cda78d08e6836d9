import { afterAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { loadProfile, parseProfile } from '../../drivers/crossbar/profile.js';
import { AnalogBackend, type HybridModel } from '../../runtime/hybrid/analog-backend.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import type { TensorData } from '../../runtime/model/tensor.js';
import { buildModel, type BuildNode, type BuildTensor } from '../helpers/onnx-builder.js';
import { Random } from '../../drivers/crossbar/random.js';

const digital = new DigitalBackend();
afterAll(() => digital.dispose());
const rng = new Random(13);
const randn = (n: number, scale = 0.5): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * scale);
const count = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

/** A graph input x of `inDims` (leading dim symbolic) into `nodes`, output y. */
function model(nodes: BuildNode[], initializers: BuildTensor[], inDims: number[], opset = 17): LoadedModel {
  return loadModel(buildModel({ nodes, initializers, inputs: [{ name: 'x', dims: ['N', ...inDims.slice(1)] }], outputs: [{ name: 'y' }], opset }));
}

const conv = (out = 'c', attrs: BuildNode['attrs'] = { pads: [1, 1, 1, 1] }): BuildNode => ({ op: 'Conv', inputs: ['x', 'W', 'B'], outputs: [out], attrs });
const convWeights = (outC = 5, inC = 3, k = [3, 3], group = 1): BuildTensor[] => [
  { name: 'W', dims: [outC, inC / group, ...k], data: randn(outC * (inC / group) * count(k)) },
  { name: 'B', dims: [outC], data: randn(outC) },
];
const batchNorm = (input: string, output: string, channels: number): { node: BuildNode; inits: BuildTensor[] } => ({
  node: { op: 'BatchNormalization', inputs: [input, 'gamma', 'beta', 'mean', 'var'], outputs: [output], attrs: { epsilon: { float: 1e-3 } } },
  inits: [
    { name: 'gamma', dims: [channels], data: randn(channels, 1) },
    { name: 'beta', dims: [channels], data: randn(channels) },
    { name: 'mean', dims: [channels], data: randn(channels) },
    { name: 'var', dims: [channels], data: Float32Array.from({ length: channels }, () => 0.2 + Math.abs(rng.normal())) },
  ],
});

interface Runs { on: Record<string, TensorData>; off: Record<string, TensorData>; ort: Record<string, TensorData>; plan: HybridModel['partition']['placements'] }

/** The model on `ideal` with the periphery on and off, and in onnxruntime alone, on one batch. */
async function runAll(m: LoadedModel, dims: number[], profile: Parameters<typeof loadProfile>[0] | ReturnType<typeof parseProfile> = 'ideal'): Promise<Runs> {
  const feeds = { x: { type: 'float32', data: randn(count(dims), 1.5), dims } as TensorData };
  const on = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile) });
  const off = new AnalogBackend({ digital, driver: new CrossbarEmulator(profile), periphery: false });
  try {
    const hybrid = await on.load(m);
    const d = await digital.load(m);
    const runs = { on: await hybrid.run(feeds), off: await (await off.load(m)).run(feeds), ort: await d.run(feeds), plan: hybrid.partition.placements };
    await d.dispose();
    return runs;
  } finally {
    await on.dispose();
    await off.dispose();
  }
}

/** check's default tolerance: |a − d| ≤ atol + rtol·|d| for every element. */
function withinCheck(a: TensorData, d: TensorData): void {
  expect(a.dims).toEqual(d.dims);
  const ad = a.data as Float32Array, dd = d.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < dd.length; i++) worst = Math.max(worst, Math.abs(ad[i]! - dd[i]!) - (1e-5 + 1e-3 * Math.abs(dd[i]!)));
  expect(worst).toBeLessThanOrEqual(0);
}

const targets = (r: Runs): Record<string, string> => Object.fromEntries(r.plan.map((p) => [p.op, p.target]));

describe('periphery ops fused after an analog layer ≡ onnxruntime (ideal profile)', () => {
  // [name, nodes after Conv 'c' → 'y', extra initializers, fused ops, whether the periphery equals onnxruntime bit for bit]
  const activationCases: [string, BuildNode[], BuildTensor[], number, boolean][] = [
    ['Relu', [{ op: 'Relu', inputs: ['c'], outputs: ['y'] }], [], 17, true],
    ['LeakyRelu', [{ op: 'LeakyRelu', inputs: ['c'], outputs: ['y'], attrs: { alpha: { float: 0.13 } } }], [], 17, true],
    ['Clip (Relu6, bounds as inputs)', [{ op: 'Clip', inputs: ['c', 'lo', 'hi'], outputs: ['y'] }], [{ name: 'lo', dims: [], data: [0] }, { name: 'hi', dims: [], data: [0.6] }], 17, true],
    ['Clip (opset 10 attributes, max only)', [{ op: 'Clip', inputs: ['c'], outputs: ['y'], attrs: { max: { float: 0.3 } } }], [], 10, true],
    ['HardSigmoid', [{ op: 'HardSigmoid', inputs: ['c'], outputs: ['y'], attrs: { alpha: { float: 0.3 }, beta: { float: 0.4 } } }], [], 17, false],
    ['HardSwish', [{ op: 'HardSwish', inputs: ['c'], outputs: ['y'] }], [], 17, false],
    ['Sigmoid', [{ op: 'Sigmoid', inputs: ['c'], outputs: ['y'] }], [], 17, false],
    ['Tanh', [{ op: 'Tanh', inputs: ['c'], outputs: ['y'] }], [], 17, false],
    ['Relu then Clip', [{ op: 'Relu', inputs: ['c'], outputs: ['r'] }, { op: 'Clip', inputs: ['r', '', 'hi'], outputs: ['y'] }], [{ name: 'hi', dims: [], data: [0.5] }], 17, true],
  ];
  for (const batch of [1, 3]) {
    it.each(activationCases)(`Conv → %s, batch ${batch}`, async (_, post, extra, opset, exact) => {
      const dims = [batch, 3, 11, 9];
      const r = await runAll(model([conv(), ...post], [...convWeights(), ...extra], dims, opset), dims);
      for (const n of post) expect(targets(r)[n.op]).toBe('analog periphery');
      withinCheck(r.on.y!, r.ort.y!);
      // The same analog Conv output through onnxruntime (periphery off) and through the periphery.
      if (exact) expect(Array.from(r.on.y!.data as Float32Array)).toEqual(Array.from(r.off.y!.data as Float32Array));
      else withinCheck(r.on.y!, r.off.y!);
    });
  }

  const poolCases: [string, BuildNode['attrs']][] = [
    ['MaxPool 2×2 stride 2 (odd input: floor)', { kernel_shape: [2, 2], strides: [2, 2] }],
    ['MaxPool 3×3 stride 2 pads 1 ceil_mode', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }],
    ['MaxPool 2×3 dilations 2×1 asymmetric pads', { kernel_shape: [2, 3], dilations: [2, 1], pads: [0, 1, 1, 0], strides: [1, 2] }],
    ['AveragePool 3×3 stride 2 pads 1', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['AveragePool count_include_pad', { kernel_shape: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], count_include_pad: 1 }],
    ['AveragePool ceil_mode', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }],
    ['AveragePool ceil_mode past the pads', { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 1, 0, 0], ceil_mode: 1 }],
    ['AveragePool 4×5 stride 1 pads 2 (MLAS column sums)', { kernel_shape: [4, 5], pads: [2, 2, 1, 2] }],
    ['AveragePool 3×3 stride 3 (MLAS generic kernel)', { kernel_shape: [3, 3], strides: [3, 3], pads: [1, 1, 1, 1] }],
    ['AveragePool 3×3 stride 3 count_include_pad', { kernel_shape: [3, 3], strides: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }],
  ];
  for (const batch of [1, 3]) {
    it.each(poolCases)(`Conv → Relu → %s, batch ${batch}`, async (name, attrs) => {
      const dims = [batch, 3, 11, 9];
      const op = name.startsWith('Max') ? 'MaxPool' : 'AveragePool';
      const r = await runAll(model([conv(), { op: 'Relu', inputs: ['c'], outputs: ['r'] }, { op, inputs: ['r'], outputs: ['y'], attrs }], convWeights(), dims), dims);
      expect(targets(r)[op]).toBe('analog periphery');
      withinCheck(r.on.y!, r.ort.y!);
      // The same analog Conv output pooled by onnxruntime (periphery off) and by the periphery: bit for bit.
      expect(Array.from(r.on.y!.data as Float32Array)).toEqual(Array.from(r.off.y!.data as Float32Array));
    });
  }

  // AveragePool in MLAS' other kernels (1-D generic, 3-D vector), both count_include_pad settings.
  const averageCases: [string, number[], BuildNode['attrs'], BuildNode['attrs'], number][] = [
    ['1-D, pads, ceil_mode', [3, 17], { pads: [1, 1] }, { kernel_shape: [3], strides: [2], pads: [1, 0], ceil_mode: 1 }, 17],
    ['1-D count_include_pad', [3, 17], { pads: [1, 1] }, { kernel_shape: [4], strides: [1], pads: [2, 1], count_include_pad: 1 }, 17],
    ['3-D', [2, 5, 6, 7], { pads: [1, 1, 1, 1, 1, 1] }, { kernel_shape: [2, 3, 2], strides: [1, 2, 1], pads: [0, 1, 1, 1, 0, 0] }, 17],
    ['3-D count_include_pad', [2, 5, 6, 7], { pads: [1, 1, 1, 1, 1, 1] }, { kernel_shape: [2, 2, 3], strides: [2, 2, 2], pads: [1, 0, 1, 0, 1, 1], count_include_pad: 1 }, 17],
    ['3-D ceil_mode', [2, 5, 6, 7], { pads: [1, 1, 1, 1, 1, 1] }, { kernel_shape: [2, 2, 3], strides: [2, 2, 2], pads: [0, 0, 1, 0, 0, 0], ceil_mode: 1 }, 11],
  ];
  for (const batch of [1, 3]) {
    it.each(averageCases)(`Conv → AveragePool %s, batch ${batch}`, async (_, inDims, convAttrs, attrs, opset) => {
      const dims = [batch, ...inDims];
      const k = inDims.slice(1).map(() => 3);
      const r = await runAll(model([conv('c', convAttrs), { op: 'AveragePool', inputs: ['c'], outputs: ['y'], attrs }], convWeights(4, inDims[0], k), dims, opset), dims);
      expect(targets(r).AveragePool).toBe('analog periphery');
      withinCheck(r.on.y!, r.ort.y!);
      expect(Array.from(r.on.y!.data as Float32Array)).toEqual(Array.from(r.off.y!.data as Float32Array));
    });
  }

  it.each([1, 3])('grouped Conv → BatchNormalization → Clip → AveragePool, batch %i', async (batch) => {
    const dims = [batch, 4, 9, 7];
    const bn = batchNorm('c', 'n', 6);
    const r = await runAll(model([
      conv('c', { group: 2, pads: [1, 0, 1, 2] }), bn.node,
      { op: 'Clip', inputs: ['n', 'lo', 'hi'], outputs: ['k'] },
      { op: 'AveragePool', inputs: ['k'], outputs: ['y'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    ], [...convWeights(6, 4, [3, 3], 2), ...bn.inits, { name: 'lo', dims: [], data: [0] }, { name: 'hi', dims: [], data: [6] }], dims), dims);
    expect(targets(r)).toMatchObject({ BatchNormalization: 'analog periphery', Clip: 'analog periphery', AveragePool: 'analog periphery' });
    withinCheck(r.on.y!, r.ort.y!);
  });

  it('1-D Conv → BatchNormalization → MaxPool', async () => {
    const dims = [3, 2, 17];
    const bn = batchNorm('c', 'n', 4);
    const r = await runAll(model([conv('c', { pads: [2, 1], strides: [1] }), bn.node, { op: 'MaxPool', inputs: ['n'], outputs: ['y'], attrs: { kernel_shape: [3], strides: [2] } }],
      [...convWeights(4, 2, [4]), ...bn.inits], dims), dims);
    expect(targets(r)).toMatchObject({ BatchNormalization: 'analog periphery', MaxPool: 'analog periphery' });
    withinCheck(r.on.y!, r.ort.y!);
  });

  it.each([1, 3])('Gemm → BatchNormalization → Relu → Sigmoid and MatMul → Tanh, batch %i', async (batch) => {
    const bn = batchNorm('g', 'n', 7);
    const r = await runAll(model([
      { op: 'Gemm', inputs: ['x', 'G', 'C'], outputs: ['g'], attrs: { transB: 1, alpha: { float: 0.7 } } }, bn.node,
      { op: 'Relu', inputs: ['n'], outputs: ['r'] }, { op: 'Sigmoid', inputs: ['r'], outputs: ['s'] },
      { op: 'MatMul', inputs: ['s', 'M'], outputs: ['m'] }, { op: 'Tanh', inputs: ['m'], outputs: ['y'] },
    ], [{ name: 'G', dims: [7, 13], data: randn(91) }, { name: 'C', dims: [7], data: randn(7) }, ...bn.inits, { name: 'M', dims: [7, 5], data: randn(35) }], [batch, 13]), [batch, 13]);
    expect(targets(r)).toMatchObject({ BatchNormalization: 'analog periphery', Relu: 'analog periphery', Sigmoid: 'analog periphery', Tanh: 'analog periphery' });
    withinCheck(r.on.y!, r.ort.y!);
  });
});

describe('Mul/Add by per-channel constants fold into the analog layer\'s affine (ideal profile)', () => {
  const perChannel = (name: string, dims: number[], data: number[] | Float32Array): BuildTensor => ({ name, dims, data });
  for (const batch of [1, 3]) {
    it(`Conv → Mul [C,1,1] → Add [C,1,1] → Relu → MaxPool (how exporters write BatchNormalization), batch ${batch}`, async () => {
      const dims = [batch, 3, 11, 9];
      const r = await runAll(model([
        conv(), { op: 'Mul', inputs: ['c', 'm'], outputs: ['s'] }, { op: 'Add', inputs: ['s', 'a'], outputs: ['t'] },
        { op: 'Relu', inputs: ['t'], outputs: ['r'] }, { op: 'MaxPool', inputs: ['r'], outputs: ['y'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      ], [...convWeights(), perChannel('m', [5, 1, 1], randn(5, 1)), perChannel('a', [5, 1, 1], randn(5))], dims), dims);
      expect(targets(r)).toMatchObject({ Conv: 'analog', Mul: 'analog periphery', Add: 'analog periphery', Relu: 'analog periphery', MaxPool: 'analog periphery' });
      withinCheck(r.on.y!, r.ort.y!);
      withinCheck(r.on.y!, r.off.y!);
    });

    it(`Conv → Add [1,C,1,1] alone, Conv → Mul by a scalar (constant first) alone, batch ${batch}`, async () => {
      const dims = [batch, 3, 10, 7];
      const add = await runAll(model([conv(), { op: 'Add', inputs: ['c', 'a'], outputs: ['y'] }], [...convWeights(), perChannel('a', [1, 5, 1, 1], randn(5))], dims), dims);
      expect(targets(add).Add).toBe('analog periphery');
      withinCheck(add.on.y!, add.ort.y!);
      const mul = await runAll(model([conv(), { op: 'Mul', inputs: ['m', 'c'], outputs: ['y'] }], [...convWeights(), perChannel('m', [], [-1.7])], dims), dims);
      expect(targets(mul).Mul).toBe('analog periphery');
      withinCheck(mul.on.y!, mul.ort.y!);
    });

    it(`Gemm → BatchNormalization → Mul [N] → Add [1,N] → Tanh, batch ${batch}`, async () => {
      const bn = batchNorm('g', 'n', 7);
      const r = await runAll(model([
        { op: 'Gemm', inputs: ['x', 'G', 'C'], outputs: ['g'], attrs: { transB: 1 } }, bn.node,
        { op: 'Mul', inputs: ['n', 'm'], outputs: ['s'] }, { op: 'Add', inputs: ['s', 'a'], outputs: ['t'] }, { op: 'Tanh', inputs: ['t'], outputs: ['y'] },
      ], [{ name: 'G', dims: [7, 13], data: randn(91) }, { name: 'C', dims: [7], data: randn(7) }, ...bn.inits, perChannel('m', [7], randn(7, 1)), perChannel('a', [1, 7], randn(7))], [batch, 13]), [batch, 13]);
      expect(targets(r)).toMatchObject({ BatchNormalization: 'analog periphery', Mul: 'analog periphery', Add: 'analog periphery', Tanh: 'analog periphery' });
      withinCheck(r.on.y!, r.ort.y!);
    });
  }

  it('the folded Mul and Add take the BatchNormalization unit, charged once per element', async () => {
    const m = model([conv(), { op: 'Mul', inputs: ['c', 'm'], outputs: ['s'] }, { op: 'Add', inputs: ['s', 'a'], outputs: ['y'] }],
      [...convWeights(), perChannel('m', [5, 1, 1], randn(5, 1)), perChannel('a', [5, 1, 1], randn(5))], [1, 3, 8, 8]);
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('pcm') });
    try {
      const nodes = [...(await analog.load(m)).peripheryNodes().values()];
      expect(nodes).toEqual([{ op: 'BatchNormalization', elementsPerOutput: 1 }, { op: 'BatchNormalization', elementsPerOutput: 0 }]);
    } finally {
      await analog.dispose();
    }
    // A periphery without the affine unit leaves them to onnxruntime, saying why.
    const reluOnly = parseProfile({ ...loadProfile('ideal'), name: 'relu-only', sources: {}, periphery: { Relu: 30 } });
    const r = await runAll(m, [1, 3, 8, 8], reluOnly);
    expect(r.plan.find((p) => p.op === 'Mul')!.reason).toContain('no per-channel affine (BatchNormalization) for Mul');
    withinCheck(r.on.y!, r.ort.y!);
  });

  it('a constant that is not per channel and a residual Add (two activations) stay in onnxruntime', async () => {
    const dims = [1, 3, 8, 8];
    const spatial = await runAll(model([conv(), { op: 'Mul', inputs: ['c', 'm'], outputs: ['y'] }], [...convWeights(), perChannel('m', [1, 1, 8, 8], randn(64))], dims), dims);
    const mul = spatial.plan.find((p) => p.op === 'Mul')!;
    expect(mul.target).toBe('digital');
    expect(mul.reason).toContain('operand [1, 1, 8, 8] is not one value per output channel');
    withinCheck(spatial.on.y!, spatial.ort.y!);
    // A residual Add (x + Conv(x)): nothing after it is fused either.
    const m = loadModel(buildModel({
      nodes: [conv(), { op: 'Add', inputs: ['c', 'x'], outputs: ['y'] }, { op: 'Mul', inputs: ['y', 'm'], outputs: ['z'] }],
      initializers: [...convWeights(5, 5), perChannel('m', [5, 1, 1], randn(5))], inputs: [{ name: 'x', dims: [1, 5, 8, 8] }], outputs: [{ name: 'y' }, { name: 'z' }],
    }));
    const r = await runAll(m, [1, 5, 8, 8]);
    expect(targets(r)).toMatchObject({ Conv: 'analog', Add: 'digital', Mul: 'digital' });
    for (const name of ['y', 'z']) withinCheck(r.on[name]!, r.ort[name]!);
  });
});

describe('what the periphery leaves to onnxruntime', () => {
  it('an op the profile lacks stays in onnxruntime, with the reason in the plan', async () => {
    const dims = [1, 3, 11, 9];
    // pcm's periphery (HERMES) lists no HardSwish; a custom profile with only Relu keeps the MaxPool digital.
    const r = await runAll(model([conv(), { op: 'HardSwish', inputs: ['c'], outputs: ['y'] }], convWeights(), dims), dims, 'pcm');
    const hardSwish = r.plan.find((p) => p.op === 'HardSwish')!;
    expect(hardSwish.target).toBe('digital');
    expect(hardSwish.reason).toContain('the pcm periphery has no HardSwish');
    const reluOnly = parseProfile({ ...loadProfile('ideal'), name: 'relu-only', sources: {}, periphery: { Relu: 30 } });
    const r2 = await runAll(model([conv(), { op: 'Relu', inputs: ['c'], outputs: ['r'] }, { op: 'MaxPool', inputs: ['r'], outputs: ['y'], attrs: { kernel_shape: [2, 2] } }], convWeights(), dims), dims, reluOnly);
    expect(targets(r2)).toMatchObject({ Relu: 'analog periphery', MaxPool: 'digital' });
    withinCheck(r2.on.y!, r2.ort.y!);
  });

  it('a value that is a graph output or has another reader is not fused past', async () => {
    const dims = [1, 3, 8, 8];
    const m = loadModel(buildModel({
      nodes: [conv(), { op: 'Relu', inputs: ['c'], outputs: ['r'] }, { op: 'MaxPool', inputs: ['r'], outputs: ['y'], attrs: { kernel_shape: [2, 2] } }, { op: 'Sigmoid', inputs: ['r'], outputs: ['s'] }],
      initializers: convWeights(), inputs: [{ name: 'x', dims }], outputs: [{ name: 'y' }, { name: 's' }, { name: 'c' }],
    }));
    const r = await runAll(m, dims);
    // 'c' is a graph output: Relu stays digital, so nothing after the Conv is fused.
    expect(targets(r)).toMatchObject({ Conv: 'analog', Relu: 'digital', MaxPool: 'digital', Sigmoid: 'digital' });
    const m2 = loadModel(buildModel({
      nodes: [conv(), { op: 'Relu', inputs: ['c'], outputs: ['r'] }, { op: 'MaxPool', inputs: ['r'], outputs: ['y'], attrs: { kernel_shape: [2, 2] } }, { op: 'Sigmoid', inputs: ['r'], outputs: ['s'] }],
      initializers: convWeights(), inputs: [{ name: 'x', dims }], outputs: [{ name: 'y' }, { name: 's' }],
    }));
    const r2 = await runAll(m2, dims);
    // 'r' has two readers: Relu is fused, the pool and the Sigmoid read its output from onnxruntime's side.
    expect(targets(r2)).toMatchObject({ Relu: 'analog periphery', MaxPool: 'digital', Sigmoid: 'digital' });
    for (const name of ['y', 's']) withinCheck(r2.on[name]!, r2.ort[name]!);
  });

  it('an AveragePool over the whole plane (onnxruntime sums it in SIMD lanes) stays in onnxruntime', async () => {
    const dims = [1, 3, 7, 6];
    const r = await runAll(model([conv(), { op: 'AveragePool', inputs: ['c'], outputs: ['y'], attrs: { kernel_shape: [7, 6] } }], convWeights(), dims), dims);
    const pool = r.plan.find((p) => p.op === 'AveragePool')!;
    expect(pool.target).toBe('digital');
    expect(pool.reason).toContain('whole plane');
    withinCheck(r.on.y!, r.ort.y!);
  });

  // onnxruntime-web runs these AveragePools in kernels whose last bits the periphery does not reproduce.
  it.each([
    ['opset 19', { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 1, 1, 1] }, 19, 'opset-19 kernel'],
    ['opset 22', { kernel_shape: [2, 2], strides: [2, 2], count_include_pad: 1 }, 22, 'opset-19 kernel'],
    ['ceil_mode with count_include_pad', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }, 17, 'ceil_mode and count_include_pad'],
  ] as [string, BuildNode['attrs'], number, string][])('AveragePool %s stays in onnxruntime', async (_, attrs, opset, reason) => {
    const dims = [3, 3, 11, 9];
    const r = await runAll(model([conv(), { op: 'AveragePool', inputs: ['c'], outputs: ['y'], attrs }], convWeights(), dims, opset), dims);
    const pool = r.plan.find((p) => p.op === 'AveragePool')!;
    expect(pool.target).toBe('digital');
    expect(pool.reason).toContain(reason);
    withinCheck(r.on.y!, r.ort.y!);
  });

  it('pooling it does not reproduce exactly (auto_pad SAME) stays in onnxruntime', async () => {
    const dims = [1, 3, 9, 9];
    const r = await runAll(model([conv(), { op: 'MaxPool', inputs: ['c'], outputs: ['y'], attrs: { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' } }], convWeights(), dims), dims);
    const pool = r.plan.find((p) => p.op === 'MaxPool')!;
    expect(pool.target).toBe('digital');
    expect(pool.reason).toContain('auto_pad SAME_UPPER');
    withinCheck(r.on.y!, r.ort.y!);
  });
});
