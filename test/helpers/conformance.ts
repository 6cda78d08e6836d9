/**
 * One ONNX test-data directory (model.onnx + test_data_set_N/) through edgerun as `edgerun check`
 * runs it — readModel, the backend registry, check's data-set reader and allclose rule — on the
 * digital backend or the hybrid one on the `ideal` profile (periphery on or off), judged as: match,
 * refused (an Error of one clear line), crash (any other exception) or wrong (runs, no error, an
 * output differs). Shared by test/hybrid/onnx-node-cases.test.ts and bench/conformance-sweep.ts.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveConfig, type Config } from '../../runtime/config.js';
import type { TensorData } from '../../runtime/model/tensor.js';
import type { HybridModel } from '../../runtime/hybrid/analog-backend.js';
import { createRegistry, readModel } from '../../apps/edgerun/context.js';
import { judgeOutputs, readDataSet, type DataSet } from '../../apps/edgerun/commands/check.js';

export const EDGERUN_MODES = ['digital', 'hybrid', 'hybrid-no-periphery'] as const;
export type EdgerunMode = (typeof EDGERUN_MODES)[number];
export type Verdict = 'match' | 'refused' | 'crash' | 'wrong';
/** `edgerun check`'s default tolerance. */
export const CHECK_TOLERANCE = { rtol: 1e-3, atol: 1e-5 };

export interface CaseRun {
  verdict: Verdict;
  /** The error, or the first data set's mismatch. */
  detail?: string;
  /** Hybrid modes: nodes on tiles or in the analog periphery. */
  analogNodes?: number;
  /** Per data set, when it ran. */
  outputs?: Record<string, TensorData>[];
}

const CONFIGS: Record<EdgerunMode, Config> = {
  digital: resolveConfig({ env: {}, flags: {} }),
  hybrid: resolveConfig({ env: {}, flags: { analog: { profile: 'ideal', periphery: true } } }),
  'hybrid-no-periphery': resolveConfig({ env: {}, flags: { analog: { profile: 'ideal', periphery: false } } }),
};

export async function dataSets(dir: string, model: Parameters<typeof readDataSet>[1]): Promise<DataSet[]> {
  const names = (await readdir(dir)).filter((n) => /^test_data_set_\d+$/.test(n)).sort();
  return Promise.all(names.map((n) => readDataSet(join(dir, n), model)));
}

export async function runCase(dir: string, mode: EdgerunMode): Promise<CaseRun> {
  const config = CONFIGS[mode];
  const registry = createRegistry(config);
  let analogNodes: number | undefined;
  try {
    const model = await readModel(join(dir, 'model.onnx'), config, () => undefined);
    const prepared = await (await registry.get(mode === 'digital' ? 'digital' : 'analog')).load(model);
    if (mode !== 'digital') analogNodes = (prepared as HybridModel).planRows().filter((r) => r.target === 'analog' || r.target === 'analog periphery').length;
    const outputs: Record<string, TensorData>[] = [];
    let detail: string | undefined;
    for (const set of await dataSets(dir, prepared)) {
      const out = await prepared.run(set.feeds);
      outputs.push(out);
      const judged = judgeOutputs(set, out, CHECK_TOLERANCE);
      if (!judged.pass) detail ??= judged.error ?? `${judged.mismatches} mismatches, max abs error ${judged.maxAbsError.toExponential(2)}`;
    }
    await prepared.dispose();
    return { verdict: detail === undefined ? 'match' : 'wrong', ...(detail === undefined ? {} : { detail }), ...(analogNodes === undefined ? {} : { analogNodes }), outputs };
  } catch (e) {
    return { verdict: errorVerdict(e), detail: String((e as Error)?.message ?? e).slice(0, 400), ...(analogNodes === undefined ? {} : { analogNodes }) };
  } finally {
    await registry.dispose();
  }
}

/** A clear refusal is an Error of one line that is not a JavaScript fault (TypeError, RangeError, ...); anything else is a crash. */
export function errorVerdict(e: unknown): Verdict {
  if (!(e instanceof Error) || e instanceof TypeError || e instanceof ReferenceError || e instanceof RangeError || e instanceof SyntaxError) return 'crash';
  if (e.message.trim().includes('\n') || /undefined|is not a function|Cannot read prop|unreachable|out of bounds|call stack|\bNaN\b/.test(e.message)) return 'crash';
  return 'refused';
}
