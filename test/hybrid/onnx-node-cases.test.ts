/**
 * A selection of ONNX's own backend node cases (test/fixtures/onnx-node: written by
 * bench/onnx-node-cases.py, variants by bench/conformance-variants.ts) through edgerun as `check`
 * runs them, on the digital backend and on the hybrid one with the `ideal` profile, periphery on
 * and off: every one matches its expected outputs or is refused with one clear line. The selection
 * holds the cases the sweep (bench/conformance-sweep.ts) found edgerun failing — models that zeros
 * cannot run (a shape, depth or slice read from an input; a float16 input), an empty tensor into an
 * analog MatMul, LeakyRelu's default alpha — and one case per form of what the hybrid plan touches.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { EDGERUN_MODES, errorVerdict, runCase, type CaseRun } from '../helpers/conformance.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { loadModel } from '../../runtime/model/load.js';
import type { TensorData } from '../../runtime/model/tensor.js';
import { buildModel, type BuildNode } from '../helpers/onnx-builder.js';

const FIXTURES = 'test/fixtures/onnx-node';
const cases = (await readdir(FIXTURES)).sort();
/** Fused operators the periphery computes exactly as onnxruntime does (README: the digital periphery). */
const EXACT = /^test_(relu|leakyrelu|clip|maxpool|averagepool)/;
/** Cases that zeros cannot run: the hybrid plan leaves them wholly to onnxruntime. */
const UNOBSERVABLE = /^test_(cast_FLOAT16|onehot|reshape_zero_dim|slice_neg)/;
const NO_MVM = /^test_(convtranspose|dequantizelinear)_/;

const bits = (t: TensorData): number[] => Array.from(new Uint32Array((t.data as Float32Array).slice().buffer));

describe('ONNX node cases: digital and hybrid on ideal match or refuse clearly', () => {
  it.each(cases)('%s', async (name) => {
    const dir = `${FIXTURES}/${name}`;
    const byMode: Record<string, CaseRun> = {};
    for (const mode of EDGERUN_MODES) byMode[mode] = await runCase(dir, mode);
    // Every case of the selection runs on onnxruntime-web, so a refusal would be edgerun's defect too: all match.
    for (const mode of EDGERUN_MODES) expect({ mode, verdict: byMode[mode]!.verdict, detail: byMode[mode]!.detail }).toEqual({ mode, verdict: 'match', detail: undefined });
    // A variant reaches the hybrid plan, unless nothing in it is an MVM the plan takes (ConvTranspose, DequantizeLinear alone).
    if (UNOBSERVABLE.test(name) || NO_MVM.test(name)) expect(byMode.hybrid!.analogNodes).toBe(0);
    else if (name.includes('~')) expect(byMode.hybrid!.analogNodes).toBeGreaterThan(0);
    if (EXACT.test(name)) {
      const [digital, hybrid] = [byMode.digital!.outputs!, byMode.hybrid!.outputs!];
      for (const [i, out] of hybrid.entries()) for (const [output, t] of Object.entries(out)) if (t.type === 'float32') expect(bits(t)).toEqual(bits(digital[i]![output]!));
    }
  });

  it('ConvTranspose stays digital; MatMul, Gemm and Conv with frozen weights go on tiles', async () => {
    const planOf = async (name: string): Promise<Record<string, string>> => {
      const digital = new DigitalBackend();
      const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
      try {
        const hybrid = await analog.load(loadModel(await readFile(`${FIXTURES}/${name}/model.onnx`), { source: name }));
        return Object.fromEntries(hybrid.partition.placements.map((p) => [p.op, p.target]));
      } finally {
        await analog.dispose();
        await digital.dispose();
      }
    };
    expect(await planOf('test_convtranspose_autopad_same~frozen')).toEqual({ ConvTranspose: 'digital' });
    expect(await planOf('test_conv_with_autopad_same~frozen')).toEqual({ Conv: 'analog' });
    expect(await planOf('test_gemm_all_attributes~frozen')).toEqual({ Gemm: 'analog' });
    expect(await planOf('test_matmul_2d~frozen')).toEqual({ MatMul: 'analog' });
    expect(await planOf('test_maxpool_with_argmax_2d_precomputed_pads~after-mvm')).toMatchObject({ Conv: 'analog', MaxPool: 'digital' }); // its Indices output is used
  });
});

describe('the sweep judges errors', () => {
  it('a one-line Error is a refusal; JavaScript faults and multi-line messages are crashes', () => {
    expect(errorVerdict(new Error('model.onnx: onnxruntime could not load the model: unknown op'))).toBe('refused');
    expect(errorVerdict(new RangeError('batch must be a whole number ≥ 1, got 0'))).toBe('crash');
    expect(errorVerdict(new TypeError("Cannot read properties of undefined (reading 'dims')"))).toBe('crash');
    expect(errorVerdict(new Error('first line\nsecond line'))).toBe('crash');
    expect(errorVerdict('a string')).toBe('crash');
  });
});

describe('Clip with min above max after an analog layer ≡ onnxruntime (max everywhere)', () => {
  const digital = new DigitalBackend();
  afterAll(() => digital.dispose());
  const bounds = [{ name: 'lo', dims: [], data: [0.5] }, { name: 'hi', dims: [], data: [-0.25] }];
  const clip: BuildNode = { op: 'Clip', inputs: ['c', 'lo', 'hi'], outputs: ['y'] };
  it.each([
    ['MatMul (periphery loop)', { op: 'MatMul', inputs: ['x', 'W'], outputs: ['c'] }, [6, 4], [3, 6]],
    ['Conv (channel-major clamp)', { op: 'Conv', inputs: ['x', 'W'], outputs: ['c'] }, [2, 3, 3, 3], [1, 3, 5, 5]],
  ] as [string, BuildNode, number[], number[]][])('%s', async (_, mvm, wDims, xDims) => {
    const count = (d: number[]): number => d.reduce((a, b) => a * b, 1);
    const model = loadModel(buildModel({
      nodes: [mvm, clip], inputs: [{ name: 'x', dims: xDims }], outputs: [{ name: 'y' }],
      initializers: [{ name: 'W', dims: wDims, data: Float32Array.from({ length: count(wDims) }, (_, i) => Math.sin(i)) }, ...bounds],
    }));
    const feeds = { x: { type: 'float32', data: Float32Array.from({ length: count(xDims) }, (_, i) => Math.cos(i) * 2), dims: xDims } };
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    try {
      const hybrid = await analog.load(model);
      expect(hybrid.partition.placements.find((p) => p.op === 'Clip')?.target).toBe('analog periphery');
      const y = (await hybrid.run(feeds)).y!;
      const d = await digital.load(model);
      expect(Array.from(y.data as Float32Array)).toEqual(Array.from((await d.run(feeds)).y!.data as Float32Array));
      expect(new Set(y.data as Float32Array)).toEqual(new Set([-0.25]));
      await d.dispose();
    } finally {
      await analog.dispose();
    }
  });
});

describe('a model that zeros cannot run', () => {
  it('runs wholly in onnxruntime on the hybrid backend, its MVM saying why', async () => {
    // Expand's shape is an input: zeros ask for [0, 0, 0], which [2, 4] does not expand to.
    const model = loadModel(buildModel({
      nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['c'] }, { op: 'Expand', inputs: ['c', 's'], outputs: ['y'] }],
      inputs: [{ name: 'x', dims: [2, 6] }, { name: 's', dims: [3], elemType: 7 }], outputs: [{ name: 'y' }],
      initializers: [{ name: 'W', dims: [6, 4], data: Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)) }],
    }));
    const feeds = { x: { type: 'float32', data: Float32Array.from({ length: 12 }, (_, i) => i / 3), dims: [2, 6] }, s: { type: 'int64', data: BigInt64Array.from([3n, 2n, 4n]), dims: [3] } };
    const digital = new DigitalBackend();
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    try {
      const hybrid = await analog.load(model);
      expect(hybrid.partition.placements.find((p) => p.op === 'MatMul')).toMatchObject({ target: 'digital', reason: expect.stringMatching(/running the model on zeros to observe it failed \(.*invalid expand shape/) });
      const y = (await hybrid.run(feeds)).y!;
      const d = await digital.load(model);
      expect(y.dims).toEqual([3, 2, 4]);
      expect(Array.from(y.data as Float32Array)).toEqual(Array.from((await d.run(feeds)).y!.data as Float32Array));
      await d.dispose();
    } finally {
      await analog.dispose();
      await digital.dispose();
    }
  });
});
