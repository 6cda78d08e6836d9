import { readdir } from 'node:fs/promises';
import { FILE_LIMITS, readFileLimited } from '../../../drivers/storage/read-file.js';
import { join } from 'node:path';
import { compareTensors } from '../../../runtime/compare.js';
import { parseTensorFile, type TensorData } from '../../../runtime/model/tensor.js';
import type { Feeds } from '../../../runtime/model/feeds.js';
import type { PreparedModel } from '../../../runtime/backend.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';
import type { Config } from '../../../runtime/config.js';
import { formatTable } from '../table.js';

export interface CheckOptions { backend: string; rtol: number; atol: number; json?: boolean }

export interface DataSetReport { name: string; pass: boolean; maxAbsError: number; mismatches: number; error?: string }

/**
 * Runs an ONNX test-data directory (model.onnx + test_data_set_N/{input,output}_K.pb, the layout of
 * ONNX's backend tests and the model zoo) and compares every output. Exit code 1 on any failure.
 */
export async function checkCommand(dir: string, opts: CheckOptions, global: GlobalOptions & DeviceOptions): Promise<DataSetReport[]> {
  const reports = await checkDirectory(dir, opts, await loadConfig(global));
  const failed = reports.filter((r) => !r.pass).length;
  if (opts.json) {
    console.log(JSON.stringify({ dir, backend: opts.backend, rtol: opts.rtol, atol: opts.atol, passed: reports.length - failed, failed, sets: reports }));
  } else {
    console.log(formatTable(['data set', 'max abs error', 'mismatches', 'result'],
      reports.map((r) => [r.name, r.error ? '-' : r.maxAbsError.toExponential(2), r.mismatches, r.pass ? 'pass' : `FAIL${r.error ? `: ${r.error}` : ''}`]), [false, true, true]));
    console.log(`\n${dir} on ${opts.backend}: ${reports.length - failed} passed, ${failed} failed (rtol ${opts.rtol}, atol ${opts.atol})`);
  }
  if (failed > 0) process.exitCode = 1;
  return reports;
}

/** Runs every test_data_set_N of an ONNX test-data directory on one backend. */
export async function checkDirectory(dir: string, opts: CheckOptions, config: Config): Promise<DataSetReport[]> {
  const model = await readModel(join(dir, 'model.onnx'), config);
  const sets = (await readdir(dir)).filter((n) => /^test_data_set_\d+$/.test(n)).sort((a, b) => index(a) - index(b));
  if (sets.length === 0) throw new Error(`${dir}: no test_data_set_N directories`);
  const registry = createRegistry(config);
  const reports: DataSetReport[] = [];
  try {
    const prepared = await (await registry.get(opts.backend)).load(model);
    for (const set of sets) reports.push(await runDataSet(join(dir, set), set, prepared, opts));
    await prepared.dispose();
  } finally {
    await registry.dispose();
  }
  return reports;
}

async function runDataSet(path: string, name: string, prepared: PreparedModel, opts: CheckOptions): Promise<DataSetReport> {
  try {
    const set = await readDataSet(path, prepared);
    return { name, ...judgeOutputs(set, await prepared.run(set.feeds), opts) };
  } catch (e) {
    return { name, pass: false, maxAbsError: Infinity, mismatches: 0, error: (e as Error).message };
  }
}

/** One test_data_set_N: the feeds (input_K.pb) and the expected outputs (output_K.pb), matched to the model by name, else by position. */
export interface DataSet { feeds: Feeds; expected: { file: string; output: string; tensor: TensorData }[] }

export async function readDataSet(path: string, model: { inputs: readonly { name: string }[]; outputs: readonly { name: string }[] }): Promise<DataSet> {
  const files = await readdir(path);
  const read = async (f: string): Promise<TensorData & { name: string }> => parseTensorFile(await readFileLimited(join(path, f), FILE_LIMITS.binary, 'test data file'), join(path, f));
  const feeds: Feeds = {};
  for (const f of files.filter((n) => /^input_\d+\.pb$/.test(n)).sort((a, b) => index(a) - index(b))) {
    const t = await read(f);
    const spec = model.inputs.find((i) => i.name === t.name) ?? model.inputs[index(f)];
    if (!spec) throw new Error(`${f} has no matching model input`);
    feeds[spec.name] = t;
  }
  const expected: DataSet['expected'] = [];
  for (const f of files.filter((n) => /^output_\d+\.pb$/.test(n)).sort((a, b) => index(a) - index(b))) {
    const tensor = await read(f);
    const spec = model.outputs.find((o) => o.name === tensor.name) ?? model.outputs[index(f)];
    if (!spec) throw new Error(`${f} has no matching model output`);
    expected.push({ file: f, output: spec.name, tensor });
  }
  return { feeds, expected };
}

/** Every expected output against what the model produced (numpy allclose). */
export function judgeOutputs(set: DataSet, outputs: Record<string, TensorData>, opts: Pick<CheckOptions, 'rtol' | 'atol'>): Omit<DataSetReport, 'name'> {
  let maxAbsError = 0;
  let mismatches = 0;
  const reasons: string[] = [];
  for (const { file, output, tensor } of set.expected) {
    const actual = outputs[output];
    if (!actual) throw new Error(`${file} has no matching model output`);
    const c = compareTensors(tensor, actual, opts.rtol, opts.atol);
    maxAbsError = Math.max(maxAbsError, c.maxAbsError);
    mismatches += c.mismatches;
    if (c.reason) reasons.push(`${file}: ${c.reason}`);
  }
  return { pass: mismatches === 0, maxAbsError, mismatches, ...(reasons.length ? { error: reasons.join('; ') } : {}) };
}

const index = (name: string): number => Number(/(\d+)(?:\.pb)?$/.exec(name)?.[1] ?? 0);

