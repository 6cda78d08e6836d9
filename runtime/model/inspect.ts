/**
 * Graph inspection: per node its operator, shapes, parameter count, multiply-accumulates and whether
 * it is a matrix–vector product with constant weights (a candidate for analog execution).
 */
import type { LoadedModel } from './load.js';
import { intAttr, toNumber, type NodeProto } from './onnx.js';
import { elementCount } from './tensor.js';

export type Shape = readonly number[];

export interface NodeInfo {
  index: number;
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  inputShapes: (Shape | undefined)[];
  outputShapes: (Shape | undefined)[];
  /** Elements of the constant tensors this node reads (weights, biases). */
  params: number;
  /** Multiply-accumulates per inference at the shapes given (undefined when a shape is unknown). */
  macs: number | undefined;
  /** True for MatMul/Gemm/Conv whose weight operand is a constant: it could run on a crossbar. */
  mvm: boolean;
  /** Why the node is or is not an MVM candidate. */
  reason: string;
}

export interface GraphSummary {
  nodes: NodeInfo[];
  params: number;
  macs: number;
  mvmNodes: number;
  /** Share of all MACs that sit in MVM candidates. */
  mvmMacShare: number;
}

/**
 * Shapes known without running anything: graph inputs/outputs with fixed dims, value_info and
 * constants. Callers can add shapes observed by running the model (see drivers/digital probeShapes).
 */
export function staticShapes(model: LoadedModel): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  const fromValueInfo = [...(model.graph.valueInfo ?? []), ...(model.graph.input ?? []), ...(model.graph.output ?? [])];
  for (const v of fromValueInfo) {
    const dims = v.type?.tensorType?.shape?.dim;
    if (!v.name || !dims) continue;
    if (dims.every((d) => (d.dimParam ?? '') === '' && d.dimValue !== undefined && d.dimValue !== null)) {
      shapes.set(v.name, dims.map((d) => toNumber(d.dimValue)));
    }
  }
  for (const [name, t] of model.constants) shapes.set(name, (t.dims ?? []).map(toNumber));
  return shapes;
}

/** `observed` adds shapes seen at run time (runtime/model/observe.ts) to the static ones. */
export function inspectModel(model: LoadedModel, observed: ReadonlyMap<string, Shape> = new Map()): GraphSummary {
  const shapes = new Map([...staticShapes(model), ...observed]);
  const nodes: NodeInfo[] = (model.graph.node ?? []).map((node, index) => {
    const inputs = node.input ?? [];
    const outputs = node.output ?? [];
    // A node folded at load (runtime/model/fold.ts) counts no parameters: its reader does.
    const folded = model.folded?.nodes.has(index) ?? false;
    const params = folded ? 0 : inputs.reduce((sum, name) => {
      const t = model.constants.get(name);
      return t && node.opType !== 'Constant' ? sum + elementCount((t.dims ?? []).map(toNumber)) : sum;
    }, 0);
    const inputShapes = inputs.map((n) => shapes.get(n));
    const outputShapes = outputs.map((n) => shapes.get(n));
    const { mvm, reason } = folded ? { mvm: false, reason: 'reads only constants: computed once at load' } : mvmCandidate(node, model);
    return {
      index, name: node.name || `${node.opType}_${index}`, op: node.opType ?? '', inputs, outputs,
      inputShapes, outputShapes, params, macs: macsOf(node, inputShapes, outputShapes), mvm, reason,
    };
  });
  const macs = nodes.reduce((s, n) => s + (n.macs ?? 0), 0);
  const mvmMacs = nodes.filter((n) => n.mvm).reduce((s, n) => s + (n.macs ?? 0), 0);
  return {
    nodes,
    params: nodes.reduce((s, n) => s + n.params, 0),
    macs,
    mvmNodes: nodes.filter((n) => n.mvm).length,
    mvmMacShare: macs > 0 ? mvmMacs / macs : 0,
  };
}

function mvmCandidate(node: NodeProto, model: LoadedModel): { mvm: boolean; reason: string } {
  const [a, b] = [node.input?.[0] ?? '', node.input?.[1] ?? ''];
  const isConst = (n: string): boolean => model.constants.has(n);
  const rank = (n: string): number => model.constants.get(n)?.dims?.length ?? -1;
  switch (node.opType) {
    case 'MatMul':
      if (isConst(b) && !isConst(a)) {
        return rank(b) === 2 ? { mvm: true, reason: 'MatMul with a constant 2-D weight' } : { mvm: false, reason: `constant weight has rank ${rank(b)}, not 2` };
      }
      return { mvm: false, reason: isConst(a) ? 'weight is the left operand' : 'both operands are dynamic' };
    case 'Gemm':
      if (isConst(b) && !isConst(a)) return { mvm: true, reason: 'Gemm with a constant weight' };
      return { mvm: false, reason: 'Gemm weight is not a constant' };
    case 'Conv':
      if (isConst(b)) {
        const group = intAttr(node, 'group', 1);
        return { mvm: true, reason: group > 1 ? `Conv (im2col), ${group} groups` : 'Conv (im2col) with constant kernel' };
      }
      return { mvm: false, reason: 'Conv kernel is not a constant' };
    default:
      return { mvm: false, reason: 'not a matrix–vector operator' };
  }
}

function macsOf(node: NodeProto, ins: (Shape | undefined)[], outs: (Shape | undefined)[]): number | undefined {
  const out = outs[0];
  switch (node.opType) {
    case 'MatMul': {
      const a = ins[0];
      return a && out ? elementCount(out) * (a[a.length - 1] ?? 0) : undefined;
    }
    case 'Gemm': {
      const a = ins[0];
      if (!a || !out) return undefined;
      const k = intAttr(node, 'transA', 0) ? a[0] : a[1];
      return elementCount(out) * (k ?? 0);
    }
    case 'Conv': {
      const w = ins[1];
      if (!w || !out) return undefined;
      return elementCount(out) * elementCount(w.slice(1)); // (Cin/group) × kernel per output element
    }
    default:
      return 0;
  }
}

export interface MacShare {
  /** MACs per node index at the shapes given. */
  perNode: number[];
  total: number;
  /** Share of `total` in the chosen nodes. */
  share: number;
}

/** The share of the model's MACs that the given nodes (e.g. those placed on tiles) hold, at the observed shapes. */
export function macShare(model: LoadedModel, observed: ReadonlyMap<string, Shape>, nodes: Iterable<number>): MacShare {
  const perNode = inspectModel(model, observed).nodes.map((n) => n.macs ?? 0);
  const total = perNode.reduce((a, b) => a + b, 0);
  let chosen = 0;
  for (const i of nodes) chosen += perNode[i] ?? 0;
  return { perNode, total, share: total > 0 ? chosen / total : 0 };
}
