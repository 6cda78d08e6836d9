/**
 * Observes the shape of every intermediate value by running the model once on zeros with all node
 * outputs exposed as graph outputs. Exact for any operator onnxruntime runs, unlike hand-written
 * shape inference. Symbolic dims are set to `dynamicDim` (1 by default: one sample).
 */
import { onnx, type ModelProto } from '../../runtime/model/onnx.js';
import type { LoadedModel } from '../../runtime/model/load.js';
import type { Shape } from '../../runtime/model/inspect.js';
import { elementCount } from '../../runtime/model/tensor.js';
import { createSession } from './ort-backend.js';
import * as ort from 'onnxruntime-web';

export async function probeShapes(model: LoadedModel, dynamicDim = 1): Promise<Map<string, Shape>> {
  const proto = onnx.ModelProto.decode(model.bytes) as ModelProto;
  const graph = proto.graph!;
  const declared = new Set((graph.output ?? []).map((o) => o.name));
  for (const node of graph.node ?? []) {
    for (const out of node.output ?? []) {
      if (out && !declared.has(out)) {
        graph.output!.push(onnx.ValueInfoProto.create({ name: out }));
        declared.add(out);
      }
    }
  }
  const session = await createSession(onnx.ModelProto.encode(proto).finish(), model.source, { graphOptimization: 'disabled' });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of model.inputs) {
      const dims = input.dims.map((d) => (typeof d === 'number' ? d : dynamicDim));
      feeds[input.name] = zeros(input.type, dims);
    }
    const out = await session.run(feeds);
    const shapes = new Map<string, Shape>();
    for (const [name, t] of Object.entries(out)) shapes.set(name, [...t.dims]);
    for (const [name, t] of Object.entries(feeds)) shapes.set(name, [...t.dims]);
    return shapes;
  } finally {
    await session.release();
  }
}

function zeros(type: string, dims: number[]): ort.Tensor {
  const n = elementCount(dims);
  switch (type) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(n), dims);
    case 'float64': return new ort.Tensor('float64', new Float64Array(n), dims);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(n), dims);
    case 'int32': return new ort.Tensor('int32', new Int32Array(n), dims);
    case 'uint8': return new ort.Tensor('uint8', new Uint8Array(n), dims);
    case 'int8': return new ort.Tensor('int8', new Int8Array(n), dims);
    case 'bool': return new ort.Tensor('bool', new Uint8Array(n), dims);
    default: throw new Error(`cannot probe shapes of an input of type ${type}`);
  }
}
