/**
 * ONNX's node cases feed every operand as a graph input, so on their own they never reach the
 * hybrid plan (it places MVMs with constant weights and fuses what follows them). Two variants of
 * each case bring them there, with the case's own data and expected outputs:
 *   ~frozen     every input but the first becomes an initializer holding data set 0's value (a
 *               MatMul/Gemm/Conv weight, a Clip bound, BatchNormalization's statistics, a scale)
 *   ~after-mvm  the frozen case whose first input is produced by an identity MVM — MatMul by I[K]
 *               (rank ≤ 2), else a 1×…×1 Conv by I[C] — so the operator reads an analog layer's
 *               output and the periphery can take it (values pass unchanged, but Inf·0 is NaN)
 */
import { mkdir, readdir, readFile, writeFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { onnx, toNumber, type ModelProto, type TensorProto } from '../runtime/model/onnx.js';

/** Largest K of an identity MVM (K² weights). */
const MAX_IDENTITY = 1024;

/** Writes the variants of the case in `dir` under `into`; returns their directories. */
export async function writeVariants(dir: string, name: string, into: string): Promise<string[]> {
  const model = onnx.ModelProto.decode(await readFile(join(dir, 'model.onnx')));
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name));
  const setDir = join(dir, 'test_data_set_0');
  const files = await readdir(setDir).catch(() => [] as string[]);
  const inputFiles = files.filter((f) => /^input_\d+\.pb$/.test(f)).sort((a, b) => index(a) - index(b));
  if (inputs.length === 0 || inputFiles.length !== inputs.length || inputs.some((v) => !v.type?.tensorType)) return [];
  const tensors = await Promise.all(inputFiles.map(async (f) => onnx.TensorProto.decode(await readFile(join(setDir, f)))));
  const written: string[] = [];
  let base = model;
  if (inputs.length > 1) {
    base = frozen(model, inputs.slice(1).map((v, i) => ({ ...tensors[i + 1]!, name: v.name! })));
    written.push(await write(base, dir, `${name}~frozen`, into, [tensors[0]!]));
  }
  const first = tensors[0]!;
  const dims = (first.dims ?? []).map(toNumber);
  const channels = dims.length <= 2 ? dims[dims.length - 1] : dims[1];
  if (first.dataType === onnx.TensorProto.DataType.FLOAT && channels !== undefined && channels > 0 && channels <= MAX_IDENTITY) {
    const input = inputs[0]!.name!;
    written.push(await write(afterMvm(base, input, dims.length, channels), dir, `${name}~after-mvm`, into, [{ ...first, name: beforeMvm(input) }]));
  }
  return written;
}

function frozen(model: ModelProto, values: TensorProto[]): ModelProto {
  const graph = model.graph!;
  const names = new Set(values.map((v) => v.name));
  // Before IR 4 an initializer must also be a graph input; from 4 on it need not be.
  const keepDeclared = toNumber(model.irVersion) < 4;
  return onnx.ModelProto.create({
    ...model,
    graph: { ...graph, initializer: [...(graph.initializer ?? []), ...values], input: (graph.input ?? []).filter((v) => keepDeclared || !names.has(v.name)) },
  });
}

function afterMvm(model: ModelProto, input: string, rank: number, channels: number): ModelProto {
  const graph = model.graph!;
  const pre = beforeMvm(input);
  const weight = `${input}__identity`;
  const conv = rank > 2;
  const eye = new Float32Array(channels * channels);
  for (let c = 0; c < channels; c++) eye[c * channels + c] = 1;
  const w: TensorProto = { name: weight, dataType: onnx.TensorProto.DataType.FLOAT, dims: conv ? [channels, channels, ...new Array<number>(rank - 2).fill(1)] : [channels, channels], rawData: new Uint8Array(eye.buffer) };
  const node = { opType: conv ? 'Conv' : 'MatMul', name: `${input}_identity_mvm`, input: [pre, weight], output: [input] };
  const declared = graph.input!.find((v) => v.name === input)!;
  const opset = model.opsetImport?.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  // MatMul and Conv exist from opset 1; older than 9 a MatMul takes no integer types, fine here (float32).
  return onnx.ModelProto.create({
    ...model,
    opsetImport: opset ? model.opsetImport : [...(model.opsetImport ?? []), { domain: '', version: 13 }],
    graph: {
      ...graph,
      node: [node, ...(graph.node ?? [])],
      initializer: [...(graph.initializer ?? []), w],
      input: graph.input!.map((v) => (v === declared ? { ...v, name: pre } : v)),
    },
  });
}

const beforeMvm = (input: string): string => `${input}__before_mvm`;

async function write(model: ModelProto, from: string, name: string, into: string, inputs: TensorProto[]): Promise<string> {
  const dir = join(into, name);
  await mkdir(join(dir, 'test_data_set_0'), { recursive: true });
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  for (const [i, t] of inputs.entries()) await writeFile(join(dir, 'test_data_set_0', `input_${i}.pb`), onnx.TensorProto.encode(t).finish());
  for (const f of await readdir(join(from, 'test_data_set_0'))) {
    if (/^output_\d+\.pb$/.test(f)) await cp(join(from, 'test_data_set_0', f), join(dir, 'test_data_set_0', f));
  }
  return dir;
}

const index = (f: string): number => Number(/(\d+)\.pb$/.exec(f)?.[1] ?? 0);
