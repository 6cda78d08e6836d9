/** Builds small ONNX models in tests (onnx-proto), so each case states exactly what it contains. */
import { onnx, type AttributeProto, type ModelProto, type TensorProto, type ValueInfoProto } from '../../runtime/model/onnx.js';

/** Attribute values: integers become INT, other numbers FLOAT; `{ float: x }` forces FLOAT; `{ floats }` is FLOATS, `{ tensor }` a TENSOR. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: BuildTensor };
export interface BuildNode { op: string; inputs: string[]; outputs: string[]; name?: string; attrs?: Record<string, AttrValue>; domain?: string }
/** float32 unless `int64` (e.g. a Reshape's shape) or `type` says otherwise. */
export interface BuildTensor { name: string; dims: number[]; data: Float32Array | number[]; int64?: boolean; type?: 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' }
/** `dims` undefined: no declared shape. */
export interface BuildIO { name: string; dims?: (number | string)[]; elemType?: number }

export interface BuildModel {
  nodes: BuildNode[];
  initializers?: BuildTensor[];
  inputs: BuildIO[];
  outputs: BuildIO[];
  opset?: number;
  irVersion?: number;
  opsetImports?: { domain: string; version: number }[];
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

const TYPED = {
  float64: [onnx.TensorProto.DataType.DOUBLE, Float64Array],
  int8: [onnx.TensorProto.DataType.INT8, Int8Array],
  uint8: [onnx.TensorProto.DataType.UINT8, Uint8Array],
  int32: [onnx.TensorProto.DataType.INT32, Int32Array],
} as const;

export function tensorProto(t: BuildTensor): TensorProto {
  if (t.type && t.type !== 'float32') {
    const [dataType, Typed] = TYPED[t.type];
    const data = Typed.from(t.data);
    return { name: t.name, dims: t.dims, dataType, rawData: new Uint8Array(data.buffer) };
  }
  if (t.int64) {
    const ints = BigInt64Array.from(Array.from(t.data, (v) => BigInt(v)));
    return { name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(ints.buffer) };
  }
  const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  return { name: t.name, dims: t.dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

function valueInfo(v: BuildIO): ValueInfoProto {
  return {
    name: v.name,
    type: { tensorType: { elemType: v.elemType ?? FLOAT, ...(v.dims ? { shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}) } },
  };
}

function attr(name: string, v: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'object' && 'tensor' in v) return { name, type: T.TENSOR, t: tensorProto(v.tensor) };
  if (typeof v === 'object' && 'floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  if (typeof v === 'object' && !Array.isArray(v)) return { name, type: T.FLOAT, f: v.float };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
}

export function buildModelProto(m: BuildModel): ModelProto {
  return onnx.ModelProto.create({
    irVersion: m.irVersion ?? 8,
    producerName: 'edgerun-test',
    opsetImport: m.opsetImports ?? [{ domain: '', version: m.opset ?? 17 }],
    graph: {
      name: 'test',
      node: m.nodes.map((n, i) => ({ opType: n.op, input: n.inputs, output: n.outputs, name: n.name ?? `${n.op}_${i}`, domain: n.domain ?? '', attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attr(k, v)) })),
      initializer: (m.initializers ?? []).map(tensorProto),
      input: m.inputs.map(valueInfo),
      output: m.outputs.map(valueInfo),
    },
  });
}

export function buildModel(m: BuildModel): Uint8Array {
  return onnx.ModelProto.encode(buildModelProto(m)).finish();
}

/** x[N,K] · W[K,M] + b → ReLU → y[N,M]: the smallest MLP layer. */
export function linearReluModel(k = 4, m = 3): { bytes: Uint8Array; w: Float32Array; b: Float32Array } {
  const w = Float32Array.from({ length: k * m }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  const b = Float32Array.from({ length: m }, (_, i) => i / 10);
  const bytes = buildModel({
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['h'] },
      { op: 'Add', inputs: ['h', 'b'], outputs: ['hb'] },
      { op: 'Relu', inputs: ['hb'], outputs: ['y'] },
    ],
    initializers: [{ name: 'W', dims: [k, m], data: w }, { name: 'b', dims: [m], data: b }],
    inputs: [{ name: 'x', dims: ['N', k] }],
    outputs: [{ name: 'y', dims: ['N', m] }],
  });
  return { bytes, w, b };
}
