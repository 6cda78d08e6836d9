/**
 * Hybrid partitioning: which nodes of a validated graph run on the analog accelerator (matrix–vector
 * products with constant float32 weights: MatMul, Gemm, Conv via im2col; a QDQ weight goes on as its
 * int8/uint8 codes with column scales) and which stay digital, each with the reason. Nodes that
 * foldConstants computed at load are marked 'constant'. Tile budgets are checked here so an
 * oversized layer can stay digital.
 */
import type { LoadedModel } from './load.js';
import { floatAttr, intAttr, intsAttr, type NodeProto } from './onnx.js';
import { decodeTensor, type TensorData } from './tensor.js';
import { convAttributes, type ConvAttributes } from './conv-geometry.js';
import type { ValueFacts } from './observe.js';
import { sharedWeights } from '../shared-weights.js';

export type AnalogKind = 'matmul' | 'gemm' | 'conv';

/** One analog layer: per group, a K×N weight matrix (row-major) that goes onto tiles. */
export interface AnalogLayer {
  kind: AnalogKind;
  nodeIndex: number;
  name: string;
  /** The dynamic operand (activations) and the produced value. */
  input: string;
  output: string;
  k: number;
  n: number;
  groupWeights: Float32Array[];
  /** Per-output-channel bias (Conv B), added digitally. */
  bias?: Float32Array;
  /**
   * Set for QDQ weights (DequantizeLinear of int8/uint8 codes): groupWeights hold the codes minus
   * their zero points, and each output column of group g is multiplied by columnScales[g][column].
   */
  quantized?: { type: string; columnScales: Float32Array[] };
  gemm?: { alpha: number; beta: number; transA: boolean; c?: TensorData };
  conv?: { attributes: ConvAttributes; inChannels: number; outChannels: number };
  tiles: number;
}

export interface NodePlacement {
  index: number;
  name: string;
  op: string;
  /** 'analog periphery': applied to an analog layer's ADC outputs (runtime/hybrid/periphery-plan.ts). */
  target: 'analog' | 'analog periphery' | 'digital' | 'constant';
  reason: string;
}

export interface Partition {
  layers: AnalogLayer[];
  placements: NodePlacement[];
}

export interface PartitionOptions {
  tileRows: number;
  tileCols: number;
  /** Tiles free on the device. */
  availableTiles: number;
  /** Keep a layer that does not fit the free tiles digital (true) or refuse the model (false). */
  fallbackOversized: boolean;
  /** Value types observed by running the model (runtime/model/observe.ts). */
  facts: ReadonlyMap<string, ValueFacts>;
  /** Why the model could not be observed (facts is then empty): every MVM stays digital, saying so. */
  unobserved?: string;
}

export class PartitionError extends Error {
  override readonly name = 'PartitionError';
}

export function partitionModel(model: LoadedModel, options: PartitionOptions): Partition {
  const layers: AnalogLayer[] = [];
  const placements: NodePlacement[] = [];
  let freeTiles = options.availableTiles;
  const tilesFor = (k: number, n: number): number => Math.ceil(k / options.tileRows) * Math.ceil(n / options.tileCols);
  for (const [index, node] of (model.graph.node ?? []).entries()) {
    const name = node.name || `${node.opType}_${index}`;
    const op = node.opType ?? '';
    const out = node.output?.[0];
    if (op === 'Constant' && (node.domain ?? '') === '' && out && model.constants.has(out)) {
      placements.push({ index, name, op, target: 'constant', reason: 'constant: folded into the layers that read it' });
      continue;
    }
    if (model.folded?.nodes.has(index)) {
      placements.push({ index, name, op, target: 'constant', reason: 'reads only constants: computed once at load' });
      continue;
    }
    const candidate = analogLayer(model, node, index, name, options.facts, options.unobserved);
    if (typeof candidate === 'string') {
      placements.push({ index, name, op, target: 'digital', reason: candidate });
      continue;
    }
    candidate.tiles = candidate.groupWeights.length * tilesFor(candidate.k, candidate.n);
    if (candidate.tiles > freeTiles) {
      const reason = `needs ${candidate.tiles} tiles, device has ${freeTiles} free`;
      if (!options.fallbackOversized) throw new PartitionError(`${model.source}: node '${name}' (${op}) ${reason}`);
      placements.push({ index, name, op, target: 'digital', reason });
      continue;
    }
    freeTiles -= candidate.tiles;
    // Many devices of one process place the same model: they hold its weights once between them.
    candidate.groupWeights = candidate.groupWeights.map(sharedWeights);
    layers.push(candidate);
    placements.push({ index, name, op, target: 'analog', reason: describe(candidate) });
  }
  return { layers, placements };
}

function describe(l: AnalogLayer): string {
  const shape = `${l.k}×${l.n}`;
  const codes = l.quantized ? `, ${l.quantized.type} codes with column scales` : '';
  if (l.kind === 'conv') return `Conv as im2col × ${l.groupWeights.length > 1 ? `${l.groupWeights.length} group matrices of ` : ''}${shape}${codes}`;
  return `${l.kind === 'gemm' ? 'Gemm' : 'MatMul'} with a constant ${shape} weight${codes}`;
}

/** A constant's value: folded values as computed, initializers and Constant outputs decoded. */
function constantTensor(model: LoadedModel, name: string): TensorData | undefined {
  const folded = model.folded?.values.get(name);
  if (folded) return folded;
  const proto = model.constants.get(name);
  return proto ? decodeTensor(proto, `constant '${name}'`) : undefined;
}

/** A weight as integer codes: DequantizeLinear of int8/uint8 codes, the scale per tensor (axis null) or along `axis`. */
interface QuantizedWeight { type: string; codes: Float32Array; axis: number | null; scales: Float32Array }

/**
 * The codes behind a weight produced by DequantizeLinear of constant int8/uint8 codes with a
 * float32 scale and zero point per tensor or per axis; undefined for any other weight.
 */
function quantizedWeight(model: LoadedModel, name: string): QuantizedWeight | undefined {
  const dq = (model.graph.node ?? []).find((n) => n.output?.[0] === name);
  if (!dq || dq.opType !== 'DequantizeLinear' || (dq.domain ?? '') !== '' || intAttr(dq, 'block_size', 0) !== 0) return undefined;
  const [xName = '', scaleName = '', zpName = ''] = dq.input ?? [];
  const x = constantTensor(model, xName);
  const scale = constantTensor(model, scaleName);
  if (!x || (x.type !== 'int8' && x.type !== 'uint8') || scale?.type !== 'float32') return undefined;
  const zp = zpName ? constantTensor(model, zpName) : undefined;
  if (zpName && zp?.type !== x.type) return undefined;
  const q = x.data as Int8Array | Uint8Array;
  const perTensor = scale.data.length === 1;
  const rawAxis = intAttr(dq, 'axis', 1);
  const axis = rawAxis < 0 ? rawAxis + x.dims.length : rawAxis;
  if (!perTensor && x.dims[axis] !== scale.data.length) return undefined;
  if (zp && zp.data.length !== scale.data.length) return undefined;
  // Element i lies on channel floor(i / inner) % channels of the quantisation axis.
  const inner = perTensor ? q.length : x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = scale.data.length;
  const codes = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) codes[i] = q[i]! - (zp ? Number(zp.data[Math.floor(i / inner) % channels]) : 0);
  return { type: x.type, codes, axis: perTensor ? null : axis, scales: scale.data as Float32Array };
}

/** Per output column of an N-column matrix: the scale of that column's channel, or undefined when the scales run along rows. */
function columnScales(qw: QuantizedWeight, columnAxis: number, n: number, offset = 0): Float32Array | undefined {
  if (qw.axis === null) return new Float32Array(n).fill(qw.scales[0]!);
  return qw.axis === columnAxis ? qw.scales.slice(offset, offset + n) : undefined;
}

/** The analog layer for a node, or the reason it stays digital. */
function analogLayer(model: LoadedModel, node: NodeProto, nodeIndex: number, name: string, facts: ReadonlyMap<string, ValueFacts>, unobserved?: string): AnalogLayer | string {
  const op = node.opType;
  if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv') return 'not a matrix–vector operator';
  if ((node.domain ?? '') !== '') return `operator of domain ${node.domain}`;
  const [a = '', b = '', c = ''] = node.input ?? [];
  const output = node.output?.[0] ?? '';
  if (!model.constants.has(b)) return model.constants.has(a) ? 'the constant is the left operand' : 'weight operand is not a constant (both operands dynamic)';
  if (model.constants.has(a)) return 'both operands are constants';
  const input = facts.get(a);
  if (!input) return `its activations' shape is unknown: running the model on zeros to observe it failed (${unobserved ?? 'not observed'})`;
  if (input.type !== 'float32') return `activations are ${input.type}, not float32`;
  const w = constantTensor(model, b)!;
  if (w.type !== 'float32') return `weight is ${w.type}, not float32`;
  // QDQ weights go onto the array as their integer codes when the scales fall on output columns.
  const qw = quantizedWeight(model, b);
  const withCodes = (scales: (Float32Array | undefined)[]): { data: Float32Array; quantized?: AnalogLayer['quantized'] } =>
    qw && scales.every((s) => s) ? { data: qw.codes, quantized: { type: qw.type, columnScales: scales as Float32Array[] } } : { data: w.data as Float32Array };
  const base = { nodeIndex, name, input: a, output, tiles: 0 };

  if (op === 'MatMul') {
    if (w.dims.length !== 2) return `weight has rank ${w.dims.length}, not 2`;
    if (input.dims.length < 1) return 'activations are a scalar';
    const { data, quantized } = withCodes([qw && columnScales(qw, 1, w.dims[1]!)]);
    return { ...base, kind: 'matmul', k: w.dims[0]!, n: w.dims[1]!, groupWeights: [data], ...(quantized ? { quantized } : {}) };
  }

  if (op === 'Gemm') {
    if (w.dims.length !== 2) return `weight has rank ${w.dims.length}, not 2`;
    let cTensor: TensorData | undefined;
    if (c) {
      cTensor = constantTensor(model, c);
      if (!cTensor) return 'bias C is not a constant';
      if (cTensor.type !== 'float32') return `bias C is ${cTensor.type}, not float32`;
    }
    const transB = intAttr(node, 'transB', 0) !== 0;
    const [k, n] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
    const { data, quantized } = withCodes([qw && columnScales(qw, transB ? 0 : 1, n)]);
    return {
      ...base, kind: 'gemm', k, n, groupWeights: [transB ? transpose(data, k, n) : data], ...(quantized ? { quantized } : {}),
      gemm: { alpha: floatAttr(node, 'alpha', 1), beta: floatAttr(node, 'beta', 1), transA: intAttr(node, 'transA', 0) !== 0, ...(cTensor ? { c: cTensor } : {}) },
    };
  }

  // Conv: W [M, C/group, k1..kd]
  if (w.dims.length < 3) return `kernel has rank ${w.dims.length}`;
  const group = intAttr(node, 'group', 1);
  const [outChannels, perGroup, ...kernel] = w.dims as number[];
  const declared = intsAttr(node, 'kernel_shape');
  if (declared && declared.join(',') !== kernel.join(',')) return `kernel_shape ${declared.join('×')} differs from the weight`;
  if (outChannels! % group !== 0) return `${outChannels} output channels do not split into ${group} groups`;
  let bias: Float32Array | undefined;
  if (c) {
    const bt = constantTensor(model, c);
    if (!bt) return 'bias is not a constant';
    if (bt.type !== 'float32') return `bias is ${bt.type}, not float32`;
    bias = bt.data as Float32Array;
  }
  const taps = kernel.reduce((x, y) => x * y, 1);
  const mPerGroup = outChannels! / group;
  const { data, quantized } = withCodes(Array.from({ length: group }, (_, g) => qw && columnScales(qw, 0, mPerGroup, g * mPerGroup)));
  const k = perGroup! * taps;
  const groupWeights: Float32Array[] = [];
  for (let g = 0; g < group; g++) {
    // Wg[(c·taps + t), m] = W[g·M/group + m, c, t]
    const wg = new Float32Array(k * mPerGroup);
    for (let m = 0; m < mPerGroup; m++) {
      const src = (g * mPerGroup + m) * k;
      for (let r = 0; r < k; r++) wg[r * mPerGroup + m] = data[src + r]!;
    }
    groupWeights.push(wg);
  }
  return {
    ...base, kind: 'conv', k, n: mPerGroup, groupWeights, ...(bias ? { bias } : {}), ...(quantized ? { quantized } : {}),
    conv: { attributes: convAttributes(node, kernel, group), inChannels: perGroup! * group, outChannels: outChannels! },
  };
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  // data is cols × rows (row-major); returns rows × cols.
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = data[c * rows + r]!;
  return out;
}
