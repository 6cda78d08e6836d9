/**
 * Constant folding at load: every value that depends only on initializers and Constant /
 * ConstantOfShape nodes (through any operator) is computed once, by onnxruntime itself — a
 * sub-model whose outputs are those values, run once on the given backend. Exporters commonly
 * produce weights this way (ConstantOfShape, Transpose, Reshape, Cast, DequantizeLinear of
 * initializers), and a MatMul/Gemm/Conv whose weight folds to a float tensor can then go onto
 * tiles like one with an initializer.
 */
import type { Backend } from '../backend.js';
import { ModelError } from './errors.js';
import type { FoldedConstants, LoadedModel } from './load.js';
import { nodeReads, onnx, type NodeProto, type TensorProto } from './onnx.js';
import { toTensorProto, type TensorData } from './tensor.js';

/** Operators whose output is not a function of their inputs: never folded. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/**
 * Values computed per onnxruntime run: a few at a time, so a model with hundreds of megabytes of
 * folded weights never holds them all in onnxruntime's WebAssembly memory at once.
 */
const VALUES_PER_RUN = 8;

/**
 * Returns the model with its constant subgraphs folded (`folded` set, the computed values added to
 * `constants`), or the model itself when there is nothing to fold.
 */
export async function foldConstants(backend: Backend, model: LoadedModel): Promise<LoadedModel> {
  if (model.folded) return model;
  const nodes = model.graph.node ?? [];
  const known = new Set(model.constants.keys());
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const folded = new Set<number>();
  for (const [index, node] of nodes.entries()) {
    const outputs = (node.output ?? []).filter(Boolean);
    if (outputs.every((o) => known.has(o))) continue; // a Constant node: its value is known already
    if (!foldable(node, known) || outputs.some((o) => graphOutputs.has(o))) continue;
    folded.add(index);
    for (const o of outputs) known.add(o);
  }
  if (folded.size === 0) return model;
  // The folded values that the rest of the graph reads: everything else is an intermediate.
  const produced = new Map<string, number>();
  for (const i of folded) for (const o of nodes[i]!.output ?? []) if (o) produced.set(o, i);
  const frontier = [...new Set(nodes.flatMap((n, i) => (folded.has(i) ? [] : nodeReads(n).filter((r) => produced.has(r)))))];
  const values = new Map<string, TensorData>();
  for (let at = 0; at < frontier.length; at += VALUES_PER_RUN) {
    const wanted = frontier.slice(at, at + VALUES_PER_RUN);
    for (const [name, t] of await compute(backend, model, wanted, slice(nodes, produced, wanted))) values.set(name, t);
  }
  const constants = new Map<string, TensorProto>(model.constants);
  for (const [name, t] of values) constants.set(name, t.type === 'string' ? stringTensorProto(t, name) : toTensorProto(t, name));
  const result: FoldedConstants = { values, nodes: folded };
  return { ...model, constants, folded: result };
}

function stringTensorProto(t: TensorData, name: string): TensorProto {
  const encoder = new TextEncoder();
  return { name, dims: [...t.dims], dataType: onnx.TensorProto.DataType.STRING, stringData: (t.data as string[]).map((v) => encoder.encode(v)) };
}

/** A Constant node (any value attribute), or a node that reads only known constants and computes a function of them. */
function foldable(node: NodeProto, known: ReadonlySet<string>): boolean {
  if (node.opType === 'Constant' && (node.domain ?? '') === '') return true;
  if (NONDETERMINISTIC.has(node.opType ?? '')) return false;
  const reads = nodeReads(node);
  return reads.length > 0 && reads.every((r) => known.has(r));
}

/** The folded nodes that `wanted` depends on, in graph order. */
function slice(nodes: NodeProto[], produced: ReadonlyMap<string, number>, wanted: string[]): NodeProto[] {
  const needed = new Set<number>();
  const stack = [...wanted];
  while (stack.length > 0) {
    const i = produced.get(stack.pop()!);
    if (i === undefined || needed.has(i)) continue;
    needed.add(i);
    stack.push(...nodeReads(nodes[i]!));
  }
  return [...needed].sort((a, b) => a - b).map((i) => nodes[i]!);
}

/** Runs the sub-model of `nodes` (no graph inputs; constants as initializers) and returns `wanted`. */
async function compute(backend: Backend, model: LoadedModel, wanted: string[], nodes: NodeProto[]): Promise<Map<string, TensorData>> {
  const producedHere = new Set(nodes.flatMap((n) => n.output ?? []));
  const reads = [...new Set(nodes.flatMap(nodeReads))].filter((r) => !producedHere.has(r));
  const initializer = reads.map((name) => ({ ...model.constants.get(name)!, name }));
  const irVersion = model.proto.irVersion;
  const graph = {
    name: `${model.graph.name ?? 'graph'}_constants`,
    node: nodes,
    initializer,
    // Before IR 4 every initializer must also be declared as a graph input.
    input: Number(irVersion) < 4 ? initializer.map((t) => ({ name: t.name, type: { tensorType: { elemType: t.dataType, shape: { dim: (t.dims ?? []).map((d) => ({ dimValue: d })) } } } })) : [],
    output: wanted.map((name) => ({ name })),
  };
  const proto = onnx.ModelProto.create({ irVersion, opsetImport: model.proto.opsetImport, producerName: 'edgerun-fold', functions: model.proto.functions, graph });
  const source = `${model.source} (constants ${wanted.join(', ')})`;
  const bytes = onnx.ModelProto.encode(proto).finish();
  // Not through loadModel: a graph of constants has no inputs, which a user's model must have.
  const sub: LoadedModel = { source, bytes, proto, graph, opset: model.opset, inputs: [], outputs: wanted.map((name) => ({ name, type: 'unknown', dims: [] })), constants: new Map() };
  let prepared;
  try {
    prepared = await backend.load(sub);
  } catch (e) {
    throw new ModelError('CORRUPT', `${model.source}: onnxruntime could not compute the constant value(s) ${wanted.join(', ')}: ${(e as Error).message}`);
  }
  try {
    const out = await prepared.run({});
    return new Map(wanted.map((name) => [name, out[name]!]));
  } finally {
    await prepared.dispose();
  }
}
