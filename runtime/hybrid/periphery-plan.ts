/**
 * Which nodes after an analog layer its core's digital periphery applies to the ADC outputs, as a
 * real core does (IBM HERMES' local digital processing unit, Mythic's SIMD engine) instead of a
 * round trip through onnxruntime: in this order, each stage optional, and only operators the
 * device lists — BatchNormalization, and Mul/Add by per-channel constants, folded into the column
 * scale and shift (as onnxruntime's optimizer folds them into a Conv), elementwise activations, and for Conv layers one MaxPool or
 * AveragePool. A node is fused only when it is the sole reader of the value before it, that value
 * is no graph output, and its attributes are ones the kernels (periphery.ts) reproduce exactly;
 * anything else stays in onnxruntime, with the reason in the plan.
 */
import type { PeripheryOp } from '../accelerator.js';
import type { LoadedModel } from '../model/load.js';
import type { AnalogLayer, Partition } from '../model/partition.js';
import type { ValueFacts } from '../model/observe.js';
import { floatAttr, intAttr, intsAttr, stringAttr, type NodeProto } from '../model/onnx.js';
import { nodeReads } from '../model/onnx.js';
import { decodeTensor } from '../model/tensor.js';

export type Activation =
  | { op: 'Relu' }
  | { op: 'LeakyRelu'; alpha: number }
  | { op: 'Clip'; min: number; max: number }
  | { op: 'HardSigmoid'; alpha: number; beta: number }
  | { op: 'HardSwish' }
  | { op: 'Sigmoid' }
  | { op: 'Tanh' };

export interface PoolStage {
  op: 'MaxPool' | 'AveragePool';
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin..., end...] */
  pads: number[];
  ceilMode: boolean;
  countIncludePad: boolean;
}

export interface Affine { scale: Float32Array; shift: Float32Array }

export interface PeripheryChain {
  /** The MVM's own output, which the periphery reads (the layer's `output` is the last fused node's). */
  input: string;
  /** Folded BatchNormalization and per-channel Mul/Add: y·scale + shift per output channel, after the layer's own bias. */
  affine?: Affine;
  activations: Activation[];
  pool?: PoolStage;
  /** The fused nodes in order, with the elements each reads per output element (a pool's window). */
  nodes: { index: number; op: PeripheryOp; elementsPerOutput: number }[];
}

/** An analog layer whose output is the last fused node's: `periphery` runs after its ADC. */
export interface PeripheryLayer extends AnalogLayer {
  periphery?: PeripheryChain;
}

const ACTIVATIONS = new Set<string>(['Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh']);
const POOLS = new Set<string>(['MaxPool', 'AveragePool']);
/** Mul/Add by a per-channel constant: how many exporters write BatchNormalization (Conv → Mul → Add). */
const ELEMENTWISE = new Set<string>(['Mul', 'Add']);
const AFFINE = new Set<string>(['BatchNormalization', ...ELEMENTWISE]);
const FLT_MAX = 3.4028234663852886e38;

/**
 * The partition with each analog layer's periphery fused: fused nodes are placed on 'analog
 * periphery', and an operator the device lacks says so in its (digital) placement.
 */
export function fusePeriphery(model: LoadedModel, partition: Partition, facts: ReadonlyMap<string, ValueFacts>, device: { profile: string; ops: ReadonlySet<PeripheryOp> }): Partition {
  const nodes = model.graph.node ?? [];
  // Every read counts, including outer-scope values read inside If/Loop/Scan bodies.
  const readers = new Map<string, number[]>();
  for (const [i, n] of nodes.entries()) for (const name of new Set(nodeReads(n))) readers.set(name, [...(readers.get(name) ?? []), i]);
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const placements = new Map(partition.placements.map((p) => [p.index, p]));
  const layers: PeripheryLayer[] = partition.layers.map((layer) => {
    const chain: PeripheryChain = { input: layer.output, activations: [], nodes: [] };
    let value = layer.output;
    let stage = 0; // 0: BatchNormalization may come, 1: activations, 2: done (after a pool)
    while (stage < 2) {
      const next = readers.get(value);
      if (!next || next.length !== 1 || graphOutputs.has(value)) break;
      const index = next[0]!;
      const node = nodes[index]!;
      const op = node.opType ?? '';
      // Mul and Add commute: the layer's value may be either operand (the other must be a constant).
      const operand = ELEMENTWISE.has(op) ? node.input?.findIndex((name) => name === value) ?? -1 : 0;
      if ((node.domain ?? '') !== '' || operand < 0 || operand > 1 || node.input?.[operand] !== value || placements.get(index)?.target !== 'digital') break;
      if (!AFFINE.has(op) && !ACTIVATIONS.has(op) && !POOLS.has(op)) break;
      if (ELEMENTWISE.has(op) && (stage > 0 || node.input?.length !== 2 || !model.constants.has(node.input[1 - operand]!))) break; // e.g. a residual Add
      const refuse = (why: string): void => { placements.set(index, { ...placements.get(index)!, reason: `stays in onnxruntime after the analog layer '${layer.name}': ${why}` }); };
      // A folded Mul/Add is the per-channel affine unit, which profiles list as BatchNormalization.
      const unit: PeripheryOp = AFFINE.has(op) ? 'BatchNormalization' : op as PeripheryOp;
      if (!device.ops.has(unit)) { refuse(`the ${device.profile} periphery has no ${unit === op ? op : `per-channel affine (BatchNormalization) for ${op}`}`); break; }
      const out = node.output?.[0];
      if (!out || (node.output ?? []).slice(1).some(Boolean)) { refuse('its extra outputs are used'); break; }
      let elementsPerOutput = 1;
      if (AFFINE.has(op)) {
        if (stage > 0) break;
        const affine = op === 'BatchNormalization' ? foldBatchNorm(model, node, layer, facts) : foldElementwise(model, node, operand, layer, facts.get(value)?.dims);
        if (typeof affine === 'string') { refuse(affine); break; }
        // One multiply-add per element however many nodes fold into it: only the first is charged.
        if (chain.affine) elementsPerOutput = 0;
        chain.affine = chain.affine ? compose(chain.affine, affine) : affine;
      } else if (ACTIVATIONS.has(op)) {
        const act = activation(model, node);
        if (typeof act === 'string') { refuse(act); break; }
        chain.activations.push(act);
      } else {
        if (layer.kind !== 'conv') break;
        const pool = poolStage(node, layer, model.opset, facts.get(value)?.dims, facts.get(out)?.dims);
        if (typeof pool === 'string') { refuse(pool); break; }
        chain.pool = pool;
        elementsPerOutput = pool.kernel.reduce((a, b) => a * b, 1);
      }
      stage = AFFINE.has(op) ? 0 : POOLS.has(op) ? 2 : 1;
      chain.nodes.push({ index, op: unit, elementsPerOutput });
      placements.set(index, { ...placements.get(index)!, target: 'analog periphery', reason: `${op} in the ${device.profile} periphery of '${layer.name}'` });
      value = out;
    }
    return chain.nodes.length ? { ...layer, output: value, periphery: chain } : layer;
  });
  return { layers, placements: partition.placements.map((p) => placements.get(p.index)!) };
}

/** scale = γ/√(σ² + ε), shift = β − μ·scale per output channel, or why it cannot fold. */
function foldBatchNorm(model: LoadedModel, node: NodeProto, layer: AnalogLayer, facts: ReadonlyMap<string, ValueFacts>): Affine | string {
  if (intAttr(node, 'training_mode', 0) !== 0) return 'BatchNormalization in training mode';
  if (intAttr(node, 'spatial', 1) !== 1) return 'BatchNormalization with spatial = 0';
  const channels = layer.kind === 'conv' ? layer.conv!.outChannels : layer.n;
  // Gemm/MatMul outputs: BatchNormalization normalises dim 1, the matrix columns only at rank 2.
  if (layer.kind !== 'conv' && facts.get(layer.output)?.dims.length !== 2) return 'normalises a dim that is not the layer\'s columns';
  const params: Float32Array[] = [];
  for (const name of (node.input ?? []).slice(1, 5)) {
    const proto = model.constants.get(name);
    if (!proto) return `parameter '${name}' is not a constant`;
    const t = decodeTensor(proto, `BatchNormalization parameter '${name}'`);
    if (t.type !== 'float32' || t.data.length !== channels) return `parameter '${name}' is not ${channels} float32 values`;
    params.push(t.data as Float32Array);
  }
  if (params.length !== 4) return 'BatchNormalization needs scale, B, mean and var';
  const [gamma, beta, mean, variance] = params as [Float32Array, Float32Array, Float32Array, Float32Array];
  const epsilon = floatAttr(node, 'epsilon', 1e-5);
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c]! / Math.sqrt(variance[c]! + epsilon);
    shift[c] = beta[c]! - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

/**
 * A Mul or Add whose other operand is a float32 constant that broadcasts per output channel (dim 1
 * of a Conv output, the last dim of a Gemm/MatMul output) or is one value, as scale and shift.
 */
function foldElementwise(model: LoadedModel, node: NodeProto, operand: number, layer: AnalogLayer, dims: readonly number[] | undefined): Affine | string {
  const name = node.input![1 - operand]!;
  const t = decodeTensor(model.constants.get(name)!, `${node.opType} operand '${name}'`);
  if (t.type !== 'float32') return `operand '${name}' is ${t.type}, not float32`;
  if (!dims) return 'shapes were not observed';
  const channels = layer.kind === 'conv' ? layer.conv!.outChannels : layer.n;
  const axis = layer.kind === 'conv' ? 1 : dims.length - 1;
  const shape = `[${t.dims.join(', ')}]`;
  if (t.dims.length > dims.length) return `operand ${shape} has more dims than the layer's output`;
  const offset = dims.length - t.dims.length;
  if (t.dims.some((d, i) => d !== 1 && !(i + offset === axis && d === channels))) return `operand ${shape} is not one value per output channel`;
  const data = t.data as Float32Array;
  const per = (c: number): number => data[data.length === 1 ? 0 : c]!;
  const scale = new Float32Array(channels).fill(1);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    if (node.opType === 'Mul') scale[c] = per(c);
    else shift[c] = per(c);
  }
  return { scale, shift };
}

/** `first` then `then`: (y·s₁ + t₁)·s₂ + t₂ = y·(s₁·s₂) + (t₁·s₂ + t₂). */
function compose(first: Affine, then: Affine): Affine {
  return {
    scale: first.scale.map((s, c) => s * then.scale[c]!),
    shift: first.shift.map((t, c) => t * then.scale[c]! + then.shift[c]!),
  };
}

function activation(model: LoadedModel, node: NodeProto): Activation | string {
  switch (node.opType) {
    case 'Relu': case 'HardSwish': case 'Sigmoid': case 'Tanh': return { op: node.opType };
    // onnxruntime holds alpha as a float32: the default 0.01 too, which as a double is another number.
    case 'LeakyRelu': return { op: 'LeakyRelu', alpha: Math.fround(floatAttr(node, 'alpha', 0.01)) };
    case 'HardSigmoid': return { op: 'HardSigmoid', alpha: floatAttr(node, 'alpha', 0.2), beta: floatAttr(node, 'beta', 0.5) };
    case 'Clip': {
      if (model.opset < 11) return { op: 'Clip', min: floatAttr(node, 'min', -FLT_MAX), max: floatAttr(node, 'max', FLT_MAX) };
      const bound = (i: number, fallback: number): number | string => {
        const name = node.input?.[i];
        if (!name) return fallback;
        const proto = model.constants.get(name);
        if (!proto) return `Clip bound '${name}' is not a constant`;
        const t = decodeTensor(proto, `Clip bound '${name}'`);
        return t.type === 'float32' && t.data.length === 1 ? (t.data as Float32Array)[0]! : `Clip bound '${name}' is not one float32`;
      };
      const min = bound(1, -Infinity);
      const max = bound(2, Infinity);
      if (typeof min === 'string') return min;
      if (typeof max === 'string') return max;
      return { op: 'Clip', min, max };
    }
    default: return `${node.opType} is not an activation`;
  }
}

/** The pool's attributes when the kernels reproduce it: explicit pads, every window over real inputs, the observed output shape. */
function poolStage(node: NodeProto, layer: AnalogLayer, opset: number, inDims: readonly number[] | undefined, outDims: readonly number[] | undefined): PoolStage | string {
  const rank = layer.conv!.attributes.kernel.length;
  const kernel = intsAttr(node, 'kernel_shape');
  if (!kernel || kernel.length !== rank) return `kernel_shape does not have ${rank} dims`;
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return `auto_pad ${autoPad} is left to onnxruntime`;
  if (node.opType === 'AveragePool') {
    // poolGeometry reproduces MLAS' pooling bit for bit; onnxruntime-web runs these through other
    // kernels whose float32 results differ from it in the last bits (tested), so they stay there.
    if ((intsAttr(node, 'dilations') ?? []).some((d) => d !== 1)) return 'dilated AveragePool is left to onnxruntime';
    if (opset >= 19) return `AveragePool at opset ${opset} runs in onnxruntime's opset-19 kernel, whose sums the periphery does not reproduce exactly`;
    if (intAttr(node, 'ceil_mode', 0) !== 0 && intAttr(node, 'count_include_pad', 0) !== 0) return 'AveragePool with ceil_mode and count_include_pad runs in an onnxruntime kernel whose sums the periphery does not reproduce exactly';
  }
  const pool: PoolStage = {
    op: node.opType as PoolStage['op'],
    kernel,
    strides: intsAttr(node, 'strides') ?? kernel.map(() => 1),
    dilations: intsAttr(node, 'dilations') ?? kernel.map(() => 1),
    pads: autoPad === 'VALID' ? new Array<number>(2 * rank).fill(0) : intsAttr(node, 'pads') ?? new Array<number>(2 * rank).fill(0),
    ceilMode: intAttr(node, 'ceil_mode', 0) !== 0,
    countIncludePad: intAttr(node, 'count_include_pad', 0) !== 0,
  };
  if (pool.strides.length !== rank || pool.dilations.length !== rank || pool.pads.length !== 2 * rank) return 'strides, dilations or pads do not match the kernel';
  if (!inDims || !outDims) return 'shapes were not observed';
  const geometry = poolGeometry(pool, inDims.slice(2));
  if (typeof geometry === 'string') return geometry;
  if (geometry.outSpatial.join(',') !== outDims.slice(2).join(',')) return `output [${outDims.slice(2).join(', ')}] is not the [${geometry.outSpatial.join(', ')}] the periphery would compute`;
  return pool;
}

export interface PoolGeometry {
  outSpatial: number[];
  positions: number;
  /** Every window's real (not padding) elements as flat input offsets, in the order onnxruntime adds them up. */
  offsets: Int32Array;
  /** Groups of window elements summed on their own first (MLAS' column sums): group g is offsets[groups[g] … groups[g+1]). */
  groups: Int32Array;
  /** Per output position p, its groups starts[p] … starts[p+1]; their sums are added up in that order. */
  starts: Int32Array;
  /** AveragePool: +0 where onnxruntime's sum also adds a zero (padding, or a sum that starts at 0), else −0: only −0 sums tell. */
  terms: Float32Array;
  /** AveragePool: the divisor per output position (real elements, or with count_include_pad the kernel's size). */
  divisors: Float32Array;
}

/**
 * Windows of a pool over one channel plane of `inSpatial`, or why the kernels would not reproduce it.
 * Elements are ordered as onnxruntime-web's CPU kernel (MLAS' MlasPool) reduces them, so AveragePool's
 * float32 sums are bit-identical: 2-D/3-D pools whose last stride is ≤ 2 and kernel dims ≤ 32 take
 * MLAS' vector kernel, which first sums each input column over the window's rows (and planes; from
 * 0 in 3-D), keeps those sums in a row buffer padded with zeros and then adds KW consecutive entries
 * of it; other pools add the window row-major from 0. Either divides once by the count of real
 * elements, or with count_include_pad by the kernel's size (even where ceil_mode runs past the pads).
 */
/** Whether `pool` is a MaxPool of 2×2 windows at stride 2 over a plane of `inSpatial` whose every window is whole (maxPool2x2's case). */
export function halvingMaxPool(pool: PoolStage, inSpatial: readonly number[], outSpatial: readonly number[]): boolean {
  return pool.op === 'MaxPool' && inSpatial.length === 2 && [pool.kernel, pool.strides].every((v) => v[0] === 2 && v[1] === 2)
    && pool.dilations.every((d) => d === 1) && pool.pads.every((p) => p === 0) && outSpatial.every((o, d) => 2 * o <= inSpatial[d]!);
}

export function poolGeometry(pool: PoolStage, inSpatial: readonly number[]): PoolGeometry | string {
  const rank = inSpatial.length;
  const outSpatial = inSpatial.map((size, d) => {
    const span = pool.dilations[d]! * (pool.kernel[d]! - 1) + 1;
    const steps = (size + pool.pads[d]! + pool.pads[d + rank]! - span) / pool.strides[d]!;
    return (pool.ceilMode ? Math.ceil(steps) : Math.floor(steps)) + 1;
  });
  if (outSpatial.some((o) => o < 1)) return `kernel [${pool.kernel.join(', ')}] does not fit input [${inSpatial.join(', ')}]`;
  const last = rank - 1;
  const average = pool.op === 'AveragePool';
  if (average && pool.kernel.every((k, d) => k === inSpatial[d]) && pool.strides.every((s) => s === 1) && pool.pads.every((p) => p === 0)) {
    return 'a pool over the whole plane: onnxruntime sums it in 4 SIMD lanes and then across them';
  }
  const vector = rank >= 2 && pool.strides[last]! <= 2 && pool.kernel.every((k) => k <= 32) && pool.pads[last]! + pool.pads[last + rank]! + inSpatial[last]! <= 2048 - 3;
  const positions = outSpatial.reduce((a, b) => a * b, 1);
  const taps = pool.kernel.reduce((a, b) => a * b, 1);
  const starts = new Int32Array(positions + 1);
  const groups: number[] = [0];
  const offsets: number[] = [];
  const terms = new Float32Array(positions);
  const divisors = new Float32Array(positions);
  const outIdx = new Array<number>(rank).fill(0);
  const tapIdx = new Array<number>(rank).fill(0);
  // MLAS' vector kernel reads its row buffer up to 3 zeros past the right padding; beyond, memory it never wrote.
  const bufferEnd = pool.pads[last]! + inSpatial[last]! + pool.pads[last + rank]! + 3;
  for (let p = 0; p < positions; p++) {
    unravel(p, outSpatial, outIdx);
    const first = offsets.length;
    const coords = (t: number): number[] | null => {
      unravel(t, pool.kernel, tapIdx);
      const c = outIdx.map((o, d) => o * pool.strides[d]! - pool.pads[d]! + tapIdx[d]! * pool.dilations[d]!);
      return c.every((v, d) => v >= 0 && v < inSpatial[d]!) ? c : null;
    };
    const flat = (c: readonly number[]): number => c.reduce((a, v, d) => a * inSpatial[d]! + v, 0);
    let zero: boolean;
    if (vector && average) {
      if (outIdx[last]! * pool.strides[last]! + pool.kernel[last]! > bufferEnd) return 'ceil_mode windows run past the row buffer onnxruntime fills';
      // One group per window column, its rows (and planes) in order; columns left to right.
      const kw = pool.kernel[last]!;
      let padColumn = false;
      for (let col = 0; col < kw; col++) {
        for (let t = col; t < taps; t += kw) {
          const c = coords(t);
          if (c) offsets.push(flat(c));
        }
        if (offsets.length > groups[groups.length - 1]!) groups.push(offsets.length);
        else padColumn = true;
      }
      zero = padColumn || rank > 2;
    } else {
      for (let t = 0; t < taps; t++) {
        const c = coords(t);
        if (c) offsets.push(flat(c));
      }
      if (offsets.length > first) groups.push(offsets.length);
      zero = true;
    }
    starts[p + 1] = groups.length - 1;
    const real = offsets.length - first;
    if (real === 0) return 'a window lies wholly in the padding';
    terms[p] = zero ? 0 : -0;
    divisors[p] = pool.countIncludePad ? taps : real;
  }
  return { outSpatial, positions, offsets: Int32Array.from(offsets), groups: Int32Array.from(groups), starts, terms, divisors };
}

function unravel(flat: number, dims: readonly number[], into: number[]): void {
  for (let d = dims.length - 1; d >= 0; d--) {
    into[d] = flat % dims[d]!;
    flat = Math.floor(flat / dims[d]!);
  }
}
