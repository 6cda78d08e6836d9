/**
 * Hybrid partitioning: which nodes of a validated graph run on the analog accelerator (matrix–vector
 * products with constant float32 weights: MatMul, Gemm, Conv via im2col) and which stay digital,
 * each with the reason. Tile budgets are checked here so an oversized layer can stay digital.
 */
import type { LoadedModel } from './load.js';
import { floatAttr, intAttr, intsAttr, type NodeProto } from './onnx.js';
import { decodeTensor, type TensorData } from './tensor.js';
import { convAttributes, type ConvAttributes } from './conv-geometry.js';
import type { ValueFacts } from './observe.js';

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
    const candidate = analogLayer(model, node, index, name, options.facts);
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
    layers.push(candidate);
    placements.push({ index, name, op, target: 'analog', reason: describe(candidate) });
  }
  return { layers, placements };
}

function describe(l: AnalogLayer): string {
  const shape = `${l.k}×${l.n}`;
  if (l.kind === 'conv') return `Conv as im2col × ${l.groupWeights.length > 1 ? `${l.groupWeights.length} group matrices of ` : ''}${shape}`;
  return `${l.kind === 'gemm' ? 'Gemm' : 'MatMul'} with a constant ${shape} weight`;
}

/** The analog layer for a node, or the reason it stays digital. */
function analogLayer(model: LoadedModel, node: NodeProto, nodeIndex: number, name: string, facts: ReadonlyMap<string, ValueFacts>): AnalogLayer | string {
  const op = node.opType;
  if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv') return 'not a matrix–vector operator';
  if ((node.domain ?? '') !== '') return `operator of domain ${node.domain}`;
  const [a = '', b = '', c = ''] = node.input ?? [];
  const output = node.output?.[0] ?? '';
  const weightProto = model.constants.get(b);
  if (!weightProto) return model.constants.has(a) ? 'the constant is the left operand' : 'weight operand is not a constant (both operands dynamic)';
  if (model.constants.has(a)) return 'both operands are constants';
  const input = facts.get(a);
  if (input && input.type !== 'float32') return `activations are ${input.type}, not float32`;
  const w = decodeTensor(weightProto, `weight '${b}'`);
  if (w.type !== 'float32') return `weight is ${w.type}, not float32`;
  const data = w.data as Float32Array;
  const base = { nodeIndex, name, input: a, output, tiles: 0 };

  if (op === 'MatMul') {
    if (w.dims.length !== 2) return `weight has rank ${w.dims.length}, not 2`;
    if (input && input.dims.length < 1) return 'activations are a scalar';
    return { ...base, kind: 'matmul', k: w.dims[0]!, n: w.dims[1]!, groupWeights: [data] };
  }

  if (op === 'Gemm') {
    if (w.dims.length !== 2) return `weight has rank ${w.dims.length}, not 2`;
    let cTensor: TensorData | undefined;
    if (c) {
      const cProto = model.constants.get(c);
      if (!cProto) return 'bias C is not a constant';
      cTensor = decodeTensor(cProto, `bias '${c}'`);
      if (cTensor.type !== 'float32') return `bias C is ${cTensor.type}, not float32`;
    }
    const transB = intAttr(node, 'transB', 0) !== 0;
    const [k, n] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
    return {
      ...base, kind: 'gemm', k, n, groupWeights: [transB ? transpose(data, k, n) : data],
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
    const bProto = model.constants.get(c);
    if (!bProto) return 'bias is not a constant';
    const bt = decodeTensor(bProto, `bias '${c}'`);
    if (bt.type !== 'float32') return `bias is ${bt.type}, not float32`;
    bias = bt.data as Float32Array;
  }
  const taps = kernel.reduce((x, y) => x * y, 1);
  const mPerGroup = outChannels! / group;
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
    ...base, kind: 'conv', k, n: mPerGroup, groupWeights, ...(bias ? { bias } : {}),
    conv: { attributes: convAttributes(node, kernel, group), inChannels: perGroup! * group, outChannels: outChannels! },
  };
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  // data is cols × rows (row-major); returns rows × cols.
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = data[c * rows + r]!;
  return out;
}
