/**
 * Observes the dtype and shape of every value in a graph by running it once on zeros with all node
 * outputs exposed as graph outputs (constants, folded ones included, are described from their
 * tensors instead of being copied out again), on whatever backend is given (normally the digital one). Exact
 * for every operator the backend runs, unlike hand-written shape inference. Symbolic dims are set
 * to `dynamicDim` (1 by default: one sample).
 */
import type { Backend } from '../backend.js';
import type { LoadedModel } from './load.js';
import { loadModel } from './load.js';
import { onnx, toNumber, type ModelProto } from './onnx.js';
import { allocatableCount, dtypeOf, elementCount, type TensorData } from './tensor.js';
import type { Feeds } from './feeds.js';

export interface ValueFacts { type: string; dims: readonly number[] }

export async function observeValues(backend: Backend, model: LoadedModel, dynamicDim = 1): Promise<Map<string, ValueFacts>> {
  const proto = onnx.ModelProto.decode(model.bytes) as ModelProto;
  const graph = proto.graph!;
  const declared = new Set((graph.output ?? []).map((o) => o.name));
  for (const [index, node] of (graph.node ?? []).entries()) {
    if (model.folded?.nodes.has(index)) continue; // computed once at load: no run-time value
    for (const out of node.output ?? []) {
      if (out && !declared.has(out) && !model.constants.has(out)) {
        graph.output!.push(onnx.ValueInfoProto.create({ name: out }));
        declared.add(out);
      }
    }
  }
  const exposed = loadModel(onnx.ModelProto.encode(proto).finish(), { source: `${model.source} (all values exposed)` });
  const prepared = await backend.load(exposed);
  try {
    const feeds: Feeds = {};
    for (const input of model.inputs) feeds[input.name] = zeros(input.name, input.type, input.dims.map((d) => (typeof d === 'number' ? d : dynamicDim)));
    const out = await prepared.run(feeds);
    const facts = new Map<string, ValueFacts>();
    for (const [name, t] of model.constants) facts.set(name, { type: dtypeOf(t.dataType) ?? 'unknown', dims: (t.dims ?? []).map(toNumber) });
    for (const [name, t] of [...Object.entries(feeds), ...Object.entries(out)]) facts.set(name, { type: t.type, dims: [...t.dims] });
    return facts;
  } finally {
    await prepared.dispose();
  }
}

const BYTES: Record<string, number> = { float64: 8, int64: 8, uint64: 8, float32: 4, int32: 4, uint32: 4, float16: 2, int16: 2, uint16: 2 };

/** Zeros (empty strings) of any input type onnxruntime-web feeds. */
function zeros(name: string, type: string, dims: number[]): TensorData {
  const n = allocatableCount(dims, BYTES[type] ?? 1, `input '${name}' (zeros to observe shapes)`);
  switch (type) {
    case 'float32': return { type, data: new Float32Array(n), dims };
    case 'float64': return { type, data: new Float64Array(n), dims };
    case 'float16': case 'uint16': return { type, data: new Uint16Array(n), dims }; // float16 as its bits
    case 'int16': return { type, data: new Int16Array(n), dims };
    case 'int64': return { type, data: new BigInt64Array(n), dims };
    case 'uint64': return { type, data: new BigUint64Array(n), dims };
    case 'int32': return { type, data: new Int32Array(n), dims };
    case 'uint32': return { type, data: new Uint32Array(n), dims };
    case 'int8': return { type, data: new Int8Array(n), dims };
    case 'uint8': case 'bool': return { type, data: new Uint8Array(n), dims };
    case 'string': return { type, data: new Array<string>(n).fill(''), dims };
    default: throw new Error(`cannot observe a model with an input of type ${type}`);
  }
}
