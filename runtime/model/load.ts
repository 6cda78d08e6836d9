/**
 * Parse and validate an ONNX model before any backend sees it. A model either comes back whole and
 * checked, or the load throws a ModelError with a specific code and a message that names the
 * offending part; nothing is ever half-loaded.
 */
import { onnx, toNumber, type GraphProto, type ModelProto, type TensorProto, type ValueInfoProto } from './onnx.js';
import { ModelError } from './errors.js';
import { bytesPerElement, dtypeOf, elementCount, type DType, type TensorData } from './tensor.js';

/**
 * A graph input or output: dtype and dims, a string dim being symbolic (e.g. a batch axis).
 * Outputs may leave their type to inference ('unknown'); inputs never do.
 */
export interface IOSpec {
  name: string;
  type: DType | 'unknown';
  dims: (number | string)[];
  /** The model declares no shape at all: any rank is accepted. */
  anyRank?: boolean;
}

export interface LoadedModel {
  /** Where the model came from (a path or a label), used in messages. */
  readonly source: string;
  /** The original bytes, handed to onnxruntime as they are. */
  readonly bytes: Uint8Array;
  readonly proto: ModelProto;
  readonly graph: GraphProto;
  /** Version of the default (ai.onnx) operator set. */
  readonly opset: number;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  /** Tensors known at load time: initializers, the outputs of Constant nodes and folded values. */
  readonly constants: ReadonlyMap<string, TensorProto>;
  /** Set by foldConstants (runtime/model/fold.ts): values computed once from constants. */
  readonly folded?: FoldedConstants;
}

export interface FoldedConstants {
  /** The computed values that other nodes read, by name (also in `constants`, as views of these). */
  readonly values: ReadonlyMap<string, TensorData>;
  /** Indices of the nodes whose outputs were computed: they do not run again. */
  readonly nodes: ReadonlySet<number>;
}

export interface LoadOptions {
  source?: string;
  /** Refuse files larger than this (bytes). */
  maxBytes?: number;
  /** Refuse any single tensor with more elements than this. */
  maxTensorElements?: number;
}

export const DEFAULT_MAX_MODEL_BYTES = 512 * 1024 * 1024;
/**
 * Largest model accepted at all (config model.maxSizeMiB's bound): a protobuf message — an ONNX
 * file is one — is limited to 2 GiB, and onnxruntime takes the model as one buffer.
 */
export const MAX_MODEL_MIB = 2047;
const DEFAULT_MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
/**
 * The oldest ai.onnx operator set onnxruntime guarantees. Older models are accepted here; whether
 * onnxruntime can run one is its own call (apps/edgerun/context.ts asks it at load, with a warning).
 */
export const OLDEST_GUARANTEED_OPSET = 7;
/** Operator-set domains onnxruntime(-web) implements, with the versions it accepts. */
const KNOWN_DOMAINS: Record<string, [number, number]> = {
  '': [1, 24],
  'ai.onnx': [1, 24],
  'ai.onnx.ml': [1, 5],
  'com.microsoft': [1, 1],
};
const IR_VERSIONS: [number, number] = [3, 11];

export function loadModel(bytes: Uint8Array, options: LoadOptions = {}): LoadedModel {
  const source = options.source ?? 'model';
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  if (bytes.length === 0) throw new ModelError('EMPTY', `${source}: the file is empty`);
  if (bytes.length > maxBytes) {
    throw new ModelError('TOO_LARGE', `${source}: ${bytes.length} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    // The decoder recurses into sub-graphs: a file nesting them by the thousand overflows the stack.
    const why = e instanceof RangeError ? 'sub-graphs nested too deeply to decode' : (e as Error).message;
    throw new ModelError('CORRUPT', `${source}: not a valid ONNX file (truncated or not protobuf): ${why}`);
  }
  const ir = toNumber(proto.irVersion);
  if (ir < IR_VERSIONS[0] || ir > IR_VERSIONS[1]) {
    throw new ModelError('BAD_IR_VERSION', `${source}: ONNX IR version ${ir || 'missing'} is not supported (expected ${IR_VERSIONS[0]}–${IR_VERSIONS[1]}); the file may not be an ONNX model`);
  }
  const graph = proto.graph;
  if (!graph) throw new ModelError('NO_GRAPH', `${source}: the model has no graph`);
  const opset = checkOpsets(proto, source);
  const constants = collectConstants(graph, source, options.maxTensorElements ?? DEFAULT_MAX_TENSOR_ELEMENTS);
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph.input ?? []).filter((v) => !initializerNames.has(v.name ?? '')).map((v) => ioSpec(v, source, 'input'));
  const outputs = (graph.output ?? []).map((v) => ioSpec(v, source, 'output'));
  if (inputs.length === 0) throw new ModelError('NO_INPUTS', `${source}: the graph declares no inputs`);
  if (outputs.length === 0) throw new ModelError('NO_OUTPUTS', `${source}: the graph declares no outputs`);
  checkDataflow(graph, inputs, source);
  return { source, bytes, proto, graph, opset, inputs, outputs, constants };
}

function checkOpsets(proto: ModelProto, source: string): number {
  const imports = proto.opsetImport ?? [];
  if (imports.length === 0) throw new ModelError('UNKNOWN_OPSET', `${source}: the model imports no operator set`);
  let opset = 0;
  for (const imp of imports) {
    const domain = imp.domain ?? '';
    const version = toNumber(imp.version);
    const range = KNOWN_DOMAINS[domain];
    if (!range) throw new ModelError('UNKNOWN_OPSET', `${source}: unknown operator-set domain '${domain}' (version ${version}); onnxruntime supports ${Object.keys(KNOWN_DOMAINS).filter(Boolean).join(', ')} and the default domain`);
    if (version < range[0] || version > range[1]) {
      throw new ModelError('UNKNOWN_OPSET', `${source}: operator set ${domain || 'ai.onnx'} version ${version} is not supported (expected ${range[0]}–${range[1]})`);
    }
    if (domain === '' || domain === 'ai.onnx') opset = version;
  }
  const imported = new Set(imports.map((i) => i.domain ?? ''));
  for (const node of proto.graph?.node ?? []) {
    const d = node.domain ?? '';
    if (!imported.has(d) && !(d === 'ai.onnx' && imported.has('')) && !(d === '' && imported.has('ai.onnx'))) {
      throw new ModelError('UNKNOWN_OPSET', `${source}: node '${node.name || node.opType}' uses domain '${d}', which the model does not import`);
    }
  }
  return opset;
}

function collectConstants(graph: GraphProto, source: string, maxElements: number): Map<string, TensorProto> {
  const constants = new Map<string, TensorProto>();
  const check = (t: TensorProto, what: string): void => {
    const dims = (t.dims ?? []).map(toNumber);
    if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new ModelError('BAD_TENSOR', `${source}: ${what} has invalid dims [${dims.join(', ')}]`);
    const count = elementCount(dims);
    if (count > maxElements) throw new ModelError('TOO_LARGE', `${source}: ${what} has ${count} elements, more than the limit of ${maxElements}`);
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw new ModelError('EXTERNAL_DATA', `${source}: ${what} keeps its data in an external file; re-export with the weights embedded`);
    }
    const size = bytesPerElement(t.dataType ?? 0);
    if (size === undefined && t.dataType !== onnx.TensorProto.DataType.STRING) {
      throw new ModelError('BAD_TENSOR', `${source}: ${what} has unsupported data type ${t.dataType}`);
    }
    const raw = t.rawData?.length ?? 0;
    if (raw > 0 && size !== undefined && raw !== count * size) {
      throw new ModelError('BAD_TENSOR', `${source}: ${what} has ${raw} bytes of raw data but dims [${dims.join(', ')}] need ${count * size}`);
    }
  };
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (!name) throw new ModelError('BAD_TENSOR', `${source}: an initializer has no name`);
    if (constants.has(name)) throw new ModelError('DUPLICATE_NAME', `${source}: initializer '${name}' is defined twice`);
    check(t, `initializer '${name}'`);
    constants.set(name, t);
  }
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Constant' || (node.domain ?? '') !== '') continue;
    const value = node.attribute?.find((a) => a.name === 'value')?.t;
    const out = node.output?.[0];
    if (value && out) {
      check(value, `Constant '${out}'`);
      constants.set(out, value);
    }
  }
  return constants;
}

function ioSpec(v: ValueInfoProto, source: string, kind: 'input' | 'output'): IOSpec {
  const name = v.name ?? '';
  const tensorType = v.type?.tensorType;
  if (!name) throw new ModelError(kind === 'input' ? 'NO_INPUTS' : 'NO_OUTPUTS', `${source}: a graph ${kind} has no name`);
  if (!v.type && kind === 'output') return { name, type: 'unknown', dims: [] };
  if (!tensorType) throw new ModelError('BAD_INPUT', `${source}: graph ${kind} '${name}' is not a tensor (sequences and maps are not supported)`);
  const type = dtypeOf(tensorType.elemType);
  if (!type) throw new ModelError('BAD_INPUT', `${source}: graph ${kind} '${name}' has unsupported element type ${tensorType.elemType}`);
  if (!tensorType.shape) return { name, type, dims: [], anyRank: true };
  const dims = (tensorType.shape.dim ?? []).map((d, i): number | string => {
    if (d.dimValue !== undefined && d.dimValue !== null && (d.dimParam ?? '') === '') {
      const n = toNumber(d.dimValue);
      if (n < 0) throw new ModelError('BAD_INPUT', `${source}: graph ${kind} '${name}' has negative dim ${n} at axis ${i}`);
      return n;
    }
    return d.dimParam || `?${i}`;
  });
  return { name, type, dims };
}

/** Every value a node reads must exist before it: a graph input, a constant or an earlier node's output. */
function checkDataflow(graph: GraphProto, inputs: IOSpec[], source: string): void {
  const available = new Set<string>(['', ...inputs.map((i) => i.name), ...(graph.initializer ?? []).map((t) => t.name ?? '')]);
  for (const [index, node] of (graph.node ?? []).entries()) {
    const label = `node ${index} '${node.name || '(unnamed)'}' (${node.opType})`;
    if (!node.opType) throw new ModelError('CORRUPT', `${source}: ${label} has no operator type`);
    for (const input of node.input ?? []) {
      if (!available.has(input)) {
        throw new ModelError('MISSING_INPUT', `${source}: ${label} reads '${input}', which no initializer, graph input or earlier node provides`);
      }
    }
    for (const output of node.output ?? []) available.add(output);
  }
  for (const out of graph.output ?? []) {
    if (!available.has(out.name ?? '')) {
      throw new ModelError('DANGLING_OUTPUT', `${source}: graph output '${out.name}' is produced by no node`);
    }
  }
}
