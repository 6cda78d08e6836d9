/**
 * Sweeps ONNX's own backend node test cases through edgerun: every case with a float32 input or
 * output runs on onnxruntime-web directly (the reference), on edgerun's digital backend, and on the
 * hybrid backend with the `ideal` profile, periphery on and off — each through what `edgerun check`
 * does (readModel, the backend registry, check's data-set reader and allclose rule, rtol 1e-3,
 * atol 1e-5). Each run is classified: match, refused (an error of one clear line), crash (any other
 * exception, or the process dying), hang (no answer in 20 s; the process is killed) or wrong (runs,
 * no error, an output differs). A refusal or a wrong answer where onnxruntime-web itself matches is
 * edgerun's defect and is listed.
 *
 *   /usr/bin/python3 bench/onnx-node-cases.py /tmp/onnx-node
 *   node bin/run-ts.js bench/conformance-sweep.ts /tmp/onnx-node/node [--out sweep.json] [--only conv,gemm]
 *
 * The cases run in child processes (one at a time, renewed every 150 cases), so a hang or an abort
 * costs one run, not the sweep.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile, stat, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeVariants } from './conformance-variants.js';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { loadModel } from '../runtime/model/load.js';
import { compareTensors } from '../runtime/compare.js';
import type { TensorData } from '../runtime/model/tensor.js';
import { resolveConfig } from '../runtime/config.js';
import { createRegistry, readModel } from '../apps/edgerun/context.js';
import { judgeOutputs, readDataSet, type DataSet } from '../apps/edgerun/commands/check.js';
import type { HybridModel } from '../runtime/hybrid/analog-backend.js';

const MODES = ['ort-web', 'digital', 'hybrid', 'hybrid-no-periphery'] as const;
type Mode = (typeof MODES)[number];
const CLASSES = ['match', 'refused', 'crash', 'hang', 'wrong'] as const;
type Class = (typeof CLASSES)[number];
const TOLERANCE = { rtol: 1e-3, atol: 1e-5 };
const HANG_MS = 20_000;
const CASES_PER_CHILD = 150;

interface Result {
  case: string;
  mode: Mode;
  class: Class;
  detail?: string;
  /** edgerun modes: onnxruntime-web's own class on the case, so a defect of edgerun stands out. */
  ort?: Class;
  /** hybrid modes: nodes on tiles or in the periphery. */
  analogNodes?: number;
  /** hybrid modes that match: every output bit-identical to onnxruntime-web's. */
  exact?: boolean;
}

interface Task { dir: string; mode: Mode }

// ---------------------------------------------------------------------------------------------
// child: runs tasks in order, reporting each start and result to the parent

async function child(): Promise<void> {
  const digitalConfig = resolveConfig({ env: {}, flags: {} });
  const configs: Record<Exclude<Mode, 'ort-web'>, ReturnType<typeof resolveConfig>> = {
    digital: digitalConfig,
    hybrid: resolveConfig({ env: {}, flags: { analog: { profile: 'ideal', periphery: true } } }),
    'hybrid-no-periphery': resolveConfig({ env: {}, flags: { analog: { profile: 'ideal', periphery: false } } }),
  };
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'fatal';
  const reference = new Map<string, Promise<{ class: Class; outputs?: Record<string, TensorData>[]; detail?: string }>>();

  /** onnxruntime-web on its own, once per case: its class and its outputs per data set. */
  const ortRun = (dir: string): Promise<{ class: Class; outputs?: Record<string, TensorData>[]; detail?: string }> => {
    let r = reference.get(dir);
    if (!r) {
      reference.clear();
      r = (async () => {
        let session: ort.InferenceSession | undefined;
        try {
          session = await ort.InferenceSession.create(await readFile(join(dir, 'model.onnx')), { executionProviders: ['wasm'], logSeverityLevel: 4 });
          const io = { inputs: session.inputNames.map((name) => ({ name })), outputs: session.outputNames.map((name) => ({ name })) };
          const outputs: Record<string, TensorData>[] = [];
          let pass = true;
          for (const set of await dataSets(dir, io)) {
            const feeds: Record<string, ort.Tensor> = {};
            for (const [name, t] of Object.entries(set.feeds)) feeds[name] = new ort.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
            const out = await session.run(feeds);
            outputs.push(out);
            pass &&= judgeOutputs(set, out, TOLERANCE).pass;
          }
          return { class: pass ? 'match' : 'wrong', outputs };
        } catch (e) {
          return { class: 'refused', detail: firstLine(e) };
        } finally {
          await session?.release();
        }
      })();
      reference.set(dir, r);
    }
    return r;
  };

  process.on('message', async (task: Task | 'exit') => {
    if (task === 'exit') process.exit(0);
    process.send!({ start: task });
    let result: Result;
    try {
      result = task.mode === 'ort-web' ? { case: task.dir, mode: task.mode, ...(({ outputs: _, ...r }) => r)(await ortRun(task.dir)) }
        : await runEdgerun(task.dir, task.mode, configs[task.mode], ortRun);
    } catch (e) {
      result = { case: task.dir, mode: task.mode, class: 'crash', detail: `sweep: ${firstLine(e)}` };
    }
    process.send!({ result });
  });
  process.send!({ ready: true });
}

async function dataSets(dir: string, model: Parameters<typeof readDataSet>[1]): Promise<DataSet[]> {
  const names = (await readdir(dir)).filter((n) => /^test_data_set_\d+$/.test(n)).sort();
  return Promise.all(names.map((n) => readDataSet(join(dir, n), model)));
}

async function runEdgerun(dir: string, mode: Exclude<Mode, 'ort-web'>, config: ReturnType<typeof resolveConfig>, ortRun: (dir: string) => Promise<{ class: Class; outputs?: Record<string, TensorData>[] }>): Promise<Result> {
  const base = { case: dir, mode };
  const registry = createRegistry(config);
  const ref = await ortRun(dir);
  try {
    let prepared;
    let analogNodes: number | undefined;
    try {
      const model = await readModel(join(dir, 'model.onnx'), config, () => undefined);
      prepared = await (await registry.get(mode === 'digital' ? 'digital' : 'analog')).load(model);
      if (mode !== 'digital') analogNodes = (prepared as HybridModel).planRows().filter((r) => r.target === 'analog' || r.target === 'analog periphery').length;
      const sets = await dataSets(dir, prepared);
      let pass = true;
      let exact = true;
      let why = '';
      for (const [i, set] of sets.entries()) {
        const out = await prepared.run(set.feeds);
        const judged = judgeOutputs(set, out, TOLERANCE);
        if (!judged.pass && pass) why = judged.error ?? `${judged.mismatches} mismatches, max abs error ${judged.maxAbsError.toExponential(2)}`;
        pass &&= judged.pass;
        const ortOut = ref.outputs?.[i];
        exact &&= !!ortOut && set.expected.every(({ output }) => bitEqual(out[output]!, ortOut[output]));
      }
      await prepared.dispose();
      return { ...base, class: pass ? 'match' : 'wrong', ort: ref.class, ...(pass ? {} : { detail: why }), ...(analogNodes !== undefined ? { analogNodes } : {}), ...(mode !== 'digital' && pass ? { exact } : {}) };
    } catch (e) {
      return { ...base, class: errorClass(e), detail: String((e as Error).message ?? e).slice(0, 400), ort: ref.class, ...(analogNodes !== undefined ? { analogNodes } : {}) };
    }
  } finally {
    await registry.dispose();
  }
}

function bitEqual(a: TensorData, b: TensorData | undefined): boolean {
  if (!b || a.type !== b.type || a.dims.join() !== b.dims.join()) return false;
  if (a.type !== 'float32') return compareTensors(b, a, 0, 0).pass;
  const x = new Uint32Array((a.data as Float32Array).slice().buffer);
  const y = new Uint32Array((b.data as Float32Array).slice().buffer);
  // NaNs of any payload are one NaN.
  return x.every((v, i) => v === y[i] || (Number.isNaN((a.data as Float32Array)[i]) && Number.isNaN((b.data as Float32Array)[i])));
}

/** A clear refusal is an Error of one line that is not a JavaScript fault; anything else is a crash. */
function errorClass(e: unknown): Class {
  if (!(e instanceof Error) || e instanceof TypeError || e instanceof ReferenceError || e instanceof RangeError || e instanceof SyntaxError) return 'crash';
  if (/\n/.test(e.message.trim()) || /undefined|is not a function|Cannot read prop|unreachable|out of bounds|call stack|\bNaN\b/.test(e.message)) return 'crash';
  return 'refused';
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 300);
}

// ---------------------------------------------------------------------------------------------
// parent: lists the cases, runs them through children, kills a child that hangs, prints the table

/** Cases whose graph inputs and outputs are all tensors and at least one of them float32. */
async function floatCases(root: string, only: string[] | undefined): Promise<string[]> {
  const dirs: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (only && !only.some((o) => name.includes(o))) continue;
    const dir = join(root, name);
    if (!(await stat(join(dir, 'model.onnx')).catch(() => null))) continue;
    try {
      const model = loadModel(await readFile(join(dir, 'model.onnx')), { source: name });
      if ([...model.inputs, ...model.outputs].some((v) => v.type === 'float32')) dirs.push(dir);
    } catch {
      dirs.push(dir); // edgerun refuses it: let the runs say so
    }
  }
  return dirs;
}

async function parent(): Promise<void> {
  const args = process.argv.slice(2);
  const root = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--out' && args[args.indexOf(a) - 1] !== '--only' && args[args.indexOf(a) - 1] !== '--variants');
  if (!root) {
    console.error('usage: node bin/run-ts.js bench/conformance-sweep.ts <dir of node cases> [--out sweep.json] [--only name,name]');
    process.exit(2);
  }
  const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  const out = flag('--out') ?? 'conformance-sweep.json';
  const originals = await floatCases(root, flag('--only')?.split(','));
  // Each case also as ~frozen and ~after-mvm (bench/conformance-variants.ts), so the hybrid plan meets it.
  const variantsDir = flag('--variants') ?? join(tmpdir(), 'edgerun-sweep-variants');
  await rm(variantsDir, { recursive: true, force: true });
  const cases = [...originals];
  for (const dir of originals) cases.push(...await writeVariants(dir, basename(dir), variantsDir));
  const tasks: Task[] = cases.flatMap((dir) => MODES.map((mode) => ({ dir, mode })));
  console.error(`${cases.length} cases with float32 inputs or outputs, ${tasks.length} runs`);
  const results: Result[] = [];
  let next = 0;
  while (next < tasks.length) {
    const batch = tasks.slice(next, next + CASES_PER_CHILD * MODES.length);
    const done = await runChild(batch, (r) => { results.push(r); if (results.length % 200 === 0) console.error(`${results.length} / ${tasks.length}`); });
    next += done;
  }
  await writeFile(out, JSON.stringify(results, null, 1));
  printTable(results, cases.length);
  console.error(`results in ${out}`);
}

/** Runs tasks in one child until it finishes them, hangs or dies; returns how many tasks it settled. */
function runChild(tasks: Task[], onResult: (r: Result) => void): Promise<number> {
  return new Promise((resolve) => {
    const child: ChildProcess = fork(fileURLToPath(new URL('../bin/run-ts.js', import.meta.url)), [fileURLToPath(import.meta.url), '--child'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    let settled = 0;
    let current: Task | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: Result): void => { onResult(r); settled++; current = undefined; };
    const send = (): void => { if (settled < tasks.length) child.send(tasks[settled]!); else child.send('exit'); };
    child.on('message', (m: { ready?: true; start?: Task; result?: Result }) => {
      if (m.ready) return send();
      if (m.start) {
        current = m.start;
        clearTimeout(timer);
        timer = setTimeout(() => { if (current) { finish({ case: current.dir, mode: current.mode, class: 'hang', detail: `no answer in ${HANG_MS / 1000} s` }); child.kill('SIGKILL'); } }, HANG_MS);
        return;
      }
      if (m.result) { clearTimeout(timer); finish(m.result); send(); }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (current) finish({ case: current.dir, mode: current.mode, class: 'crash', detail: `the process died (${signal ?? `exit ${code}`})` });
      // A child that dies before its first task still moves the sweep on.
      resolve(Math.max(settled, 1));
    });
  });
}

const variantOf = (dir: string): string => /~([a-z-]+)$/.exec(dir)?.[1] ?? 'as is';

function printTable(results: Result[], cases: number): void {
  const count = (rows: Result[], mode: Mode, c: Class): number => rows.filter((r) => r.mode === mode && r.class === c).length;
  console.log(`\n${cases} runs of ONNX node cases with float32 inputs or outputs, as is and as variants (rtol ${TOLERANCE.rtol}, atol ${TOLERANCE.atol})\n`);
  console.log(`| variant | mode | ${CLASSES.join(' | ')} |`);
  console.log(`|---|---|${CLASSES.map(() => '---:').join('|')}|`);
  for (const variant of ['as is', 'frozen', 'after-mvm']) {
    const rows = results.filter((r) => variantOf(r.case) === variant);
    for (const mode of MODES) console.log(`| ${variant} | ${mode} | ${CLASSES.map((c) => count(rows, mode, c)).join(' | ')} |`);
  }
  const touched = new Set(results.filter((r) => (r.analogNodes ?? 0) > 0).map((r) => r.case));
  console.log(`\ncases whose hybrid plan puts nodes on tiles or in the periphery: ${touched.size}`);
  for (const mode of ['hybrid', 'hybrid-no-periphery'] as const) {
    const rows = results.filter((r) => touched.has(r.case));
    console.log(`  ${mode}: ${CLASSES.map((c) => `${c} ${count(rows, mode, c)}`).join(', ')}; bit-identical to onnxruntime-web ${rows.filter((r) => r.mode === mode && r.exact).length}`);
  }
  const defects = results.filter((r) => r.mode !== 'ort-web' && r.class !== 'match' && (r.ort === 'match' || r.class === 'crash' || r.class === 'hang'));
  console.log(`\nedgerun's defects (onnxruntime-web matches, or a crash/hang): ${defects.length}`);
  for (const d of defects) console.log(`  ${d.mode.padEnd(19)} ${d.class.padEnd(7)} ${d.case.split('/').pop()}: ${d.detail ?? ''}`);
}

if (process.argv.includes('--child')) await child();
else await parent();
