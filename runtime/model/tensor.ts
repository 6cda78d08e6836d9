/**
 * Tensors as the runtime sees them: a typed array, a dtype name and dims. Structurally the same as
 * onnxruntime-common's Tensor (type, data, dims), so an ort.Tensor passes through without a copy.
 */
import { onnx, toNumber, type TensorProto } from './onnx.js';
import { ModelError } from './errors.js';

export type DType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface TensorData {
  readonly type: string;
  readonly data: TypedArray | string[];
  readonly dims: readonly number[];
}

const DT = onnx.TensorProto.DataType;

interface DTypeInfo { name: DType; bytes: number; make: (buf: ArrayBuffer, off: number, n: number) => TypedArray }

/** ONNX TensorProto.DataType → runtime dtype; only the types onnxruntime-web can feed. */
const DTYPES: Partial<Record<number, DTypeInfo>> = {
  [DT.FLOAT]: { name: 'float32', bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  [DT.DOUBLE]: { name: 'float64', bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  [DT.FLOAT16]: { name: 'float16', bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  [DT.INT8]: { name: 'int8', bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  [DT.UINT8]: { name: 'uint8', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  [DT.INT16]: { name: 'int16', bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  [DT.UINT16]: { name: 'uint16', bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  [DT.INT32]: { name: 'int32', bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  [DT.UINT32]: { name: 'uint32', bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  [DT.INT64]: { name: 'int64', bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  [DT.UINT64]: { name: 'uint64', bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
  [DT.BOOL]: { name: 'bool', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

export function dtypeOf(elemType: number | null | undefined): DType | undefined {
  if (elemType === DT.STRING) return 'string';
  return DTYPES[elemType ?? 0]?.name;
}

export function bytesPerElement(elemType: number): number | undefined {
  return DTYPES[elemType]?.bytes;
}

/** Whether two shapes are equal (an absent one equals none). */
export function sameDims(a: readonly number[] | undefined, b: readonly number[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Largest tensor edgerun makes up itself (random inputs, zeros to observe shapes): 1 GiB. */
export const MAX_GENERATED_TENSOR_BYTES = 2 ** 30;

/**
 * The element count of a tensor about to be allocated for `what`, refused with its size when it
 * is above MAX_GENERATED_TENSOR_BYTES: a model may declare any shape, memory is not unlimited.
 */
export function allocatableCount(dims: readonly number[], bytesPerValue: number, what: string): number {
  const n = elementCount(dims);
  const bytes = n * bytesPerValue;
  if (!Number.isSafeInteger(n) || bytes > MAX_GENERATED_TENSOR_BYTES) {
    throw new ModelError('TOO_LARGE', `${what} of shape [${dims.join(', ')}] would have ${n.toPrecision(4)} values (${(bytes / 2 ** 30).toPrecision(4)} GiB), more than the limit of ${MAX_GENERATED_TENSOR_BYTES / 2 ** 30} GiB`);
  }
  return n;
}

/**
 * Decodes a TensorProto (initializer, Constant value or a .pb test file) into TensorData.
 * Checks that the payload length matches the dims; raw data is copied once into an aligned buffer.
 */
export function decodeTensor(t: TensorProto, what = `tensor '${t.name ?? ''}'`): TensorData {
  const dims = (t.dims ?? []).map(toNumber);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ModelError('BAD_TENSOR', `${what} has invalid dims [${dims.join(', ')}]`);
  }
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new ModelError('EXTERNAL_DATA', `${what} keeps its data in an external file, which edgerun does not load; re-export with the weights embedded`);
  }
  const count = elementCount(dims);
  const elemType = t.dataType ?? 0;
  if (elemType === DT.STRING) {
    const strings = (t.stringData ?? []).map((s) => new TextDecoder().decode(s));
    if (strings.length !== count) throw lengthError(what, count, strings.length);
    return { type: 'string', data: strings, dims };
  }
  const info = DTYPES[elemType];
  if (!info) throw new ModelError('BAD_TENSOR', `${what} has unsupported data type ${onnx.TensorProto.DataType[elemType] ?? elemType}`);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== count * info.bytes) {
      throw new ModelError('BAD_TENSOR', `${what}: raw data holds ${raw.length} bytes but dims [${dims.join(', ')}] of ${info.name} need ${count * info.bytes}`);
    }
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return { type: info.name, data: info.make(copy.buffer, 0, count), dims };
  }
  const values = typedField(t, elemType);
  if (values.length !== count) throw lengthError(what, count, values.length);
  const out = info.make(new ArrayBuffer(count * info.bytes), 0, count);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < count; i++) out[i] = BigInt(values[i] as number | bigint);
  } else {
    for (let i = 0; i < count; i++) (out as Float32Array)[i] = Number(values[i]);
  }
  return { type: info.name, data: out, dims };
}

function typedField(t: TensorProto, elemType: number): ArrayLike<number | bigint> {
  switch (elemType) {
    case DT.FLOAT: return t.floatData ?? [];
    case DT.DOUBLE: return t.doubleData ?? [];
    case DT.INT64: return (t.int64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()));
    case DT.UINT64: case DT.UINT32: return (t.uint64Data ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()));
    default: return t.int32Data ?? []; // int8/16/32, uint8/16, bool, float16 bits live in int32_data
  }
}

function lengthError(what: string, expected: number, got: number): ModelError {
  return new ModelError('BAD_TENSOR', `${what} holds ${got} values but its dims need ${expected}`);
}

/** TensorData as a TensorProto whose raw data is a view of the tensor's buffer (no copy). */
export function toTensorProto(t: TensorData, name: string): TensorProto {
  const entry = Object.entries(DTYPES).find(([, v]) => v?.name === t.type);
  if (!entry || typeof t.data === 'string' || Array.isArray(t.data)) throw new Error(`cannot encode tensor '${name}' of type ${t.type}`);
  const data = t.data as TypedArray;
  return { name, dims: [...t.dims], dataType: Number(entry[0]), rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Encodes float32 (or any numeric) TensorData as a serialised TensorProto, for .pb files. */
export function encodeTensor(t: TensorData, name: string): Uint8Array {
  return onnx.TensorProto.encode(onnx.TensorProto.create(toTensorProto(t, name))).finish();
}

/** Parses a serialised TensorProto (an ONNX test-data `input_K.pb` / `output_K.pb`). */
export function parseTensorFile(bytes: Uint8Array, what: string): TensorData & { name: string } {
  let proto: TensorProto;
  try {
    proto = onnx.TensorProto.decode(bytes);
  } catch (e) {
    throw new ModelError('CORRUPT', `${what} is not a valid TensorProto: ${(e as Error).message}`);
  }
  return { ...decodeTensor(proto, what), name: proto.name ?? '' };
}
