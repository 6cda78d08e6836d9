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
import { Command } from 'commander';
import { readdir, readFile, writeFile, stat, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeVariants } from './conformance-variants.js';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { loadModel } from '../runtime/model/load.js';
import { compareTensors } from '../runtime/compare.js';
import type { TensorData } from '../runtime/model/tensor.js';
import { judgeOutputs } from '../apps/edgerun/commands/check.js';
import { CHECK_TOLERANCE, dataSets, runCase } from '../test/helpers/conformance.js';

const MODES = ['ort-web', 'digital', 'hybrid', 'hybrid-no-periphery'] as const;
type Mode = (typeof MODES)[number];
const CLASSES = ['match', 'refused', 'crash', 'hang', 'wrong'] as const;
type Class = (typeof CLASSES)[number]; // runCase's verdicts, and hang
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

interface Reference { class: Class; outputs?: Record<string, TensorData>[]; detail?: string }

/** onnxruntime-web on its own (not through edgerun's loader): its class and outputs per data set. */
async function ortReference(dir: string): Promise<Reference> {
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
      pass &&= judgeOutputs(set, out, CHECK_TOLERANCE).pass;
    }
    return { class: pass ? 'match' : 'wrong', outputs };
  } catch (e) {
    return { class: 'refused', detail: String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 300) };
  } finally {
    await session?.release();
  }
}

async function child(): Promise<void> {
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'fatal';
  let reference: { dir: string; result: Promise<Reference> } | undefined;
  const ortRun = (dir: string): Promise<Reference> => {
    if (reference?.dir !== dir) reference = { dir, result: ortReference(dir) };
    return reference.result;
  };
  process.on('message', async (task: Task | 'exit') => {
    if (task === 'exit') process.exit(0);
    const base = { case: task.dir, mode: task.mode };
    let result: Result;
    try {
      const ref = await ortRun(task.dir);
      if (task.mode === 'ort-web') {
        result = { ...base, class: ref.class, ...(ref.detail ? { detail: ref.detail } : {}) };
      } else {
        const run = await runCase(task.dir, task.mode);
        const exact = run.verdict === 'match' && task.mode !== 'digital' ? run.outputs!.every((out, i) => Object.keys(out).every((name) => bitEqual(out[name]!, ref.outputs?.[i]?.[name]))) : undefined;
        result = { ...base, class: run.verdict, ort: ref.class, ...(run.detail ? { detail: run.detail } : {}), ...(run.analogNodes === undefined ? {} : { analogNodes: run.analogNodes }), ...(exact === undefined ? {} : { exact }) };
      }
    } catch (e) {
      result = { ...base, class: 'crash', detail: `sweep: ${String((e as Error)?.message ?? e).split('\n')[0]}` };
    }
    process.send!({ result });
  });
  process.send!({ ready: true });
}

function bitEqual(a: TensorData, b: TensorData | undefined): boolean {
  if (!b || a.type !== b.type || a.dims.join() !== b.dims.join()) return false;
  if (a.type !== 'float32') return compareTensors(b, a, 0, 0).pass;
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  const xb = new Uint32Array(x.slice().buffer);
  const yb = new Uint32Array(y.slice().buffer);
  // NaNs of any payload are one NaN.
  return xb.every((v, i) => v === yb[i] || (Number.isNaN(x[i]) && Number.isNaN(y[i])));
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
  const program = new Command('conformance-sweep')
    .description("ONNX's node cases through onnxruntime-web, edgerun digital and hybrid ideal (periphery on and off)")
    .argument('<dir>', 'directory of node cases (bench/onnx-node-cases.py writes <out>/node)')
    .option('--out <file>', 'every run as JSON', 'conformance-sweep.json')
    .option('--only <names>', 'only cases whose name contains one of these (comma-separated)')
    .option('--variants <dir>', 'where the ~frozen and ~after-mvm variants are written (emptied first)', join(tmpdir(), 'edgerun-sweep-variants'))
    .parse();
  const root = program.args[0]!;
  const { out, only, variants: variantsDir } = program.opts<{ out: string; only?: string; variants: string }>();
  const originals = await floatCases(root, only?.split(','));
  // Each case also as ~frozen and ~after-mvm (bench/conformance-variants.ts), so the hybrid plan meets it.
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
    // The clock runs from when a task is sent: a child that never even starts it has hung too.
    const send = (): void => {
      if (settled >= tasks.length) return void child.send('exit');
      current = tasks[settled]!;
      child.send(current);
      clearTimeout(timer);
      timer = setTimeout(() => { if (current) { finish({ case: current.dir, mode: current.mode, class: 'hang', detail: `no answer in ${HANG_MS / 1000} s` }); child.kill('SIGKILL'); } }, HANG_MS);
    };
    child.on('message', (m: { ready?: true; result?: Result }) => {
      if (m.ready) send();
      else if (m.result) { clearTimeout(timer); finish(m.result); send(); }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // A child that dies before its first task is charged to that task, so the sweep moves on.
      const lost = current ?? (settled === 0 ? tasks[0] : undefined);
      if (lost) finish({ case: lost.dir, mode: lost.mode, class: 'crash', detail: `the process died (${signal ?? `exit ${code}`})` });
      resolve(settled);
    });
  });
}

const variantOf = (dir: string): string => /~([a-z-]+)$/.exec(dir)?.[1] ?? 'as is';

function printTable(results: Result[], cases: number): void {
  const count = (rows: Result[], mode: Mode, c: Class): number => rows.filter((r) => r.mode === mode && r.class === c).length;
  console.log(`\n${cases} runs of ONNX node cases with float32 inputs or outputs, as is and as variants (rtol ${CHECK_TOLERANCE.rtol}, atol ${CHECK_TOLERANCE.atol})\n`);
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
