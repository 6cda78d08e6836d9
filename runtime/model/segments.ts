/**
 * Cuts a partitioned graph into execution steps: analog layers, and between them maximal runs of
 * digital nodes, each an ONNX sub-model of the original graph that onnxruntime runs as it is.
 */
import type { LoadedModel } from './load.js';
import { nodeReads, onnx, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx.js';
import type { AnalogLayer, Partition } from './partition.js';
import type { ValueFacts } from './observe.js';

export interface DigitalSegment {
  kind: 'digital';
  nodes: NodeProto[];
  /** Values the segment reads from earlier steps or the graph inputs. */
  inputs: string[];
  /** Values it produces that later steps or the graph outputs need. */
  outputs: string[];
  /** The sub-model, serialised ONNX. */
  bytes: Uint8Array;
  /** Set when the segment only relabels dims (e.g. a Flatten before a Gemm): see LayoutView. */
  view?: LayoutView;
}

/**
 * A segment of layout-only nodes: its output is its input's data under the dims observed when the
 * plan was built. The executor passes the buffer on instead of calling onnxruntime (a session run
 * costs tens of µs) whenever the input arrives with the observed dims, and runs the sub-model
 * otherwise (another batch size): no dims are computed by hand.
 */
export interface LayoutView {
  input: string;
  output: string;
  inDims: readonly number[];
  outDims: readonly number[];
}

/** Operators whose output holds their first input's elements in the same (row-major) order. */
const LAYOUT_OPS = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity']);

export interface AnalogStep {
  kind: 'analog';
  layer: AnalogLayer;
}

export type Step = DigitalSegment | AnalogStep;

export interface ExecutionPlan {
  steps: Step[];
  /** For each step, the values that are read for the last time there (freed after it). */
  releases: string[][];
}

export function buildPlan(model: LoadedModel, partition: Partition, facts: ReadonlyMap<string, ValueFacts>): ExecutionPlan {
  const nodes = model.graph.node ?? [];
  const layerAt = new Map(partition.layers.map((l) => [l.nodeIndex, l]));
  const groups: ({ analog: AnalogLayer } | { digital: NodeProto[] })[] = [];
  for (const p of partition.placements) {
    // Constants are folded into their readers, periphery nodes into their analog layer.
    if (p.target === 'constant' || p.target === 'analog periphery') continue;
    const layer = layerAt.get(p.index);
    if (layer) { groups.push({ analog: layer }); continue; }
    const last = groups[groups.length - 1];
    if (last && 'digital' in last) last.digital.push(nodes[p.index]!);
    else groups.push({ digital: [nodes[p.index]!] });
  }
  const reads = groups.map((g) => ('analog' in g ? [g.analog.input] : g.digital.flatMap(nodeReads)).filter((n) => n && !model.constants.has(n)));
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const steps: Step[] = groups.map((g, i) => {
    if ('analog' in g) return { kind: 'analog', layer: g.analog };
    const produced = new Set(g.digital.flatMap((n) => n.output ?? []));
    const inputs = [...new Set(reads[i]!.filter((n) => !produced.has(n)))];
    const laterReads = new Set(reads.slice(i + 1).flat());
    const outputs = [...produced].filter((n) => n && (laterReads.has(n) || graphOutputs.has(n)));
    const constants = [...new Set(g.digital.flatMap(nodeReads).filter((n) => model.constants.has(n)))];
    const bytes = subModel(model, g.digital, inputs, outputs, constants, facts, i);
    const view = layoutView(g.digital, inputs, outputs, facts, graphOutputs);
    return { kind: 'digital', nodes: g.digital, inputs, outputs, bytes, ...(view ? { view } : {}) };
  });
  const lastRead = new Map<string, number>();
  reads.forEach((names, i) => names.forEach((n) => lastRead.set(n, i)));
  const releases = steps.map(() => [] as string[]);
  for (const [name, i] of lastRead) if (!graphOutputs.has(name)) releases[i]!.push(name);
  return { steps, releases };
}

/**
 * A chain of layout-only nodes from one input to one output, both with observed dims. Graph outputs
 * are left to onnxruntime, so a caller never gets a result that shares memory with its feed.
 */
function layoutView(nodes: NodeProto[], inputs: string[], outputs: string[], facts: ReadonlyMap<string, ValueFacts>, graphOutputs: ReadonlySet<string>): LayoutView | undefined {
  if (inputs.length !== 1 || outputs.length !== 1 || graphOutputs.has(outputs[0]!)) return undefined;
  let value = inputs[0]!;
  for (const node of nodes) {
    if (!LAYOUT_OPS.has(node.opType ?? '') || (node.domain ?? '') !== '' || node.input?.[0] !== value || node.output?.length !== 1) return undefined;
    value = node.output[0]!;
  }
  const inFacts = facts.get(inputs[0]!);
  const outFacts = facts.get(value);
  if (value !== outputs[0] || !inFacts || !outFacts || inFacts.type !== outFacts.type) return undefined;
  return { input: inputs[0]!, output: value, inDims: inFacts.dims, outDims: outFacts.dims };
}

const ELEM_TYPE: Record<string, number> = {
  float32: onnx.TensorProto.DataType.FLOAT, float64: onnx.TensorProto.DataType.DOUBLE, float16: onnx.TensorProto.DataType.FLOAT16,
  int8: onnx.TensorProto.DataType.INT8, uint8: onnx.TensorProto.DataType.UINT8, int16: onnx.TensorProto.DataType.INT16,
  uint16: onnx.TensorProto.DataType.UINT16, int32: onnx.TensorProto.DataType.INT32, uint32: onnx.TensorProto.DataType.UINT32,
  int64: onnx.TensorProto.DataType.INT64, uint64: onnx.TensorProto.DataType.UINT64, bool: onnx.TensorProto.DataType.BOOL,
  string: onnx.TensorProto.DataType.STRING,
};

function valueInfo(name: string, facts: ReadonlyMap<string, ValueFacts>, model: LoadedModel, required: boolean): ValueInfoProto {
  const declared = [...(model.graph.input ?? []), ...(model.graph.valueInfo ?? []), ...(model.graph.output ?? [])].find((v) => v.name === name && v.type?.tensorType?.elemType);
  const elemType = declared?.type?.tensorType?.elemType ?? ELEM_TYPE[facts.get(name)?.type ?? ''];
  if (elemType === undefined) {
    if (required) throw new Error(`${model.source}: cannot tell the element type of '${name}' to cut the graph there`);
    return { name };
  }
  // Inputs get their observed rank with every dim symbolic, so any batch size flows through.
  const dims = facts.get(name)?.dims;
  const shape = required && dims ? { dim: dims.map((_, i) => ({ dimParam: `${name}_d${i}` })) } : undefined;
  return { name, type: { tensorType: { elemType, ...(shape ? { shape } : {}) } } };
}

function subModel(model: LoadedModel, nodes: NodeProto[], inputs: string[], outputs: string[], constants: string[], facts: ReadonlyMap<string, ValueFacts>, index: number): Uint8Array {
  const initializer: TensorProto[] = constants.map((name) => ({ ...model.constants.get(name)!, name }));
  const proto = onnx.ModelProto.create({
    irVersion: model.proto.irVersion,
    opsetImport: model.proto.opsetImport,
    producerName: 'edgerun-partition',
    functions: model.proto.functions,
    graph: {
      name: `${model.graph.name ?? 'graph'}_segment_${index}`,
      node: nodes,
      initializer,
      input: inputs.map((n) => valueInfo(n, facts, model, true)),
      output: outputs.map((n) => valueInfo(n, facts, model, false)),
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
