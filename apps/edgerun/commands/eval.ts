import { SingleBar, Presets } from 'cli-progress';
import { parseDataset } from '../../../runtime/dataset.js';
import { evaluate, type EvalResult } from '../../../runtime/evaluate.js';
import { FILE_LIMITS, readFileLimited } from '../../../drivers/storage/read-file.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';
import type { Config } from '../../../runtime/config.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import type { Dataset } from '../../../runtime/dataset.js';
import type { AnalogBackend } from '../../../runtime/hybrid/analog-backend.js';
import { CrossbarEmulator } from '../../../drivers/crossbar/emulator.js';
import { accuracyOverAges, meanStd, parseAges, type AgePoint } from '../../../runtime/hybrid/drift-sweep.js';
import { formatTable } from '../table.js';
import type { DetectEvalResult } from './eval-detect.js';

export interface EvalOptions {
  data: string;
  /** classify (EDGD data set, accuracy) or detect (EDGS scene set, mAP@0.5). */
  task?: string;
  backend: string;
  age?: string;
  seeds?: number;
  gdc?: string;
  adcBits?: number;
  batch?: number;
  limit?: number;
  json?: boolean;
  progress?: boolean;
}

export async function evalCommand(path: string, opts: EvalOptions, global: GlobalOptions & DeviceOptions): Promise<EvalResult | AgeSweep | DetectEvalResult> {
  if (opts.task === 'detect') return (await import('./eval-detect.js')).evalDetectCommand(path, opts, global);
  if (opts.task !== undefined && opts.task !== 'classify') throw new Error(`--task ${opts.task}: classify or detect`);
  const config = await loadConfig(global, opts.batch ? { eval: { batchSize: opts.batch } } : {});
  const model = await readModel(path, config);
  const dataset = parseDataset(await readFileLimited(opts.data, FILE_LIMITS.binary, 'data set'), opts.data);
  if (opts.gdc !== undefined && opts.gdc !== 'on' && opts.gdc !== 'off') throw new Error(`--gdc must be on or off, got '${opts.gdc}'`);
  if (opts.backend === 'analog' && (opts.age || (opts.seeds ?? 1) > 1 || opts.gdc || opts.adcBits)) return ageSweep(path, model, dataset, opts, config);
  const registry = createRegistry(config);
  try {
    const prepared = await (await registry.get(opts.backend)).load(model);
    const total = Math.min(opts.limit ?? dataset.count, dataset.count);
    // A progress bar only where someone watches it: on a terminal, for runs worth waiting on.
    const bar = opts.progress !== false && process.stderr.isTTY && total >= 500
      ? new SingleBar({ stream: process.stderr, format: 'eval [{bar}] {percentage}% | {value}/{total} samples | ETA {eta}s' }, Presets.shades_classic)
      : undefined;
    bar?.start(total, 0);
    const result = await evaluate(prepared, dataset, { source: opts.data, batchSize: config.eval.batchSize, limit: opts.limit, onProgress: (done) => bar?.update(done) });
    bar?.stop();
    await prepared.dispose();
    if (opts.json) {
      console.log(JSON.stringify({ model: path, data: opts.data, backend: opts.backend, ...result }));
    } else {
      printEval(path, opts.backend, result);
    }
    return result;
  } finally {
    await registry.dispose();
  }
}

export interface AgeSweep {
  model: string;
  profile: string;
  gdc: boolean;
  adcBits: number;
  seeds: number[];
  digitalAccuracy: number;
  /** Mean analog accuracy at the first age (the headline figure). */
  accuracy: number;
  table: { age: string; seconds: number; mean: number; std: number; accuracies: number[] }[];
}

/** Analog accuracy over device ages and device instances, beside the digital accuracy. */
async function ageSweep(path: string, model: LoadedModel, dataset: Dataset, opts: EvalOptions, config: Config): Promise<AgeSweep> {
  const ages = parseAges(opts.age ?? '1s');
  // A remote accelerator keeps the profile it was started with; overrides would be silently lost.
  const remote = config.remote.socket !== undefined;
  if (remote && (opts.gdc || opts.adcBits)) {
    throw new Error(`--gdc and --adc-bits change the in-process emulator; the accelerator at remote.socket ${config.remote.socket} keeps its own settings (set them where it runs: edgerun accel-emulator --profile …)`);
  }
  const seeds = Array.from({ length: opts.seeds ?? 1 }, (_, i) => config.analog.seed + i);
  if (remote && seeds.length > 1) throw new Error('--seeds: a remote accelerator is one device instance; evaluate it with --seeds 1');
  const evalOptions = { source: opts.data, batchSize: config.eval.batchSize, limit: opts.limit };
  const digitalRegistry = createRegistry(config);
  const digitalModel = await (await digitalRegistry.get('digital')).load(model);
  const digitalAccuracy = (await evaluate(digitalModel, dataset, evalOptions)).accuracy;
  await digitalRegistry.dispose();
  const overrides = { ...(opts.gdc ? { gdc: opts.gdc === 'on' ? 'global' as const : 'off' as const } : {}), ...(opts.adcBits ? { adc: { bits: opts.adcBits } } : {}) };
  const perSeed: AgePoint[][] = [];
  let profile = config.analog.profile;
  let gdc = false;
  let adcBits = Infinity;
  for (const seed of seeds) {
    const registry = createRegistry({ ...config, analog: { ...config.analog, seed } }, overrides);
    try {
      const backend = (await registry.get('analog')) as AnalogBackend;
      const info = backend.driver.info();
      profile = info.profile;
      adcBits = info.adcBits;
      // A remote device compensates drift as its profile says; CALIBRATE is harmless where it does not.
      gdc = backend.driver instanceof CrossbarEmulator ? backend.driver.profile.gdc !== 'off' : true;
      const hybrid = await backend.load(model);
      perSeed.push(await accuracyOverAges(hybrid, backend.driver, ages, dataset, { ...evalOptions, gdc }));
      if (!opts.json) process.stderr.write(`  device instance seed ${seed}: ${perSeed[perSeed.length - 1]!.map((p) => `${p.label} ${(p.accuracy * 100).toFixed(2)}%`).join(', ')}\n`);
    } finally {
      await registry.dispose();
    }
  }
  const table = ages.map((age, i) => {
    const accuracies = perSeed.map((points) => points[i]!.accuracy);
    return { age: age.label, seconds: age.seconds, ...meanStd(accuracies), accuracies };
  });
  const sweep: AgeSweep = { model: path, profile, gdc, adcBits, seeds, digitalAccuracy, accuracy: table[0]!.mean, table };
  if (opts.json) {
    console.log(JSON.stringify(sweep));
  } else {
    const pct = (x: number): string => (x * 100).toFixed(2);
    console.log(`${path}: analog (${profile}, GDC ${gdc ? 'on' : 'off'}, ADC ${adcBits} bits) over ${seeds.length} device instance(s) vs digital ${pct(digitalAccuracy)}%`);
    console.log(formatTable(['age', 'analog accuracy %', 'digital %', 'loss (points)'],
      table.map((r) => [r.age, `${pct(r.mean)} ± ${pct(r.std)}`, pct(digitalAccuracy), pct(digitalAccuracy - r.mean)]), [false, true, true, true]));
  }
  return sweep;
}

export function printEval(path: string, backend: string, r: EvalResult): void {
  console.log(`${path} on ${backend}: accuracy ${(r.accuracy * 100).toFixed(2)}% (${r.correct}/${r.samples})`);
  console.log(formatTable(
    ['batch', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'samples/s'],
    [[r.batchSize, r.latency.p50Ms, r.latency.p90Ms, r.latency.p99Ms, r.latency.maxMs, Math.round(r.samplesPerSecond)]],
    [true, true, true, true, true, true],
  ));
}
