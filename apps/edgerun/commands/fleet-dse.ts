/**
 * `edgerun fleet dse`: sweeps model sizes × device settings, measuring each point with the real
 * backends (onnxruntime-web digital; the crossbar emulator's hybrid backend, aged), energy from the
 * runtime/power model, then writes the JSON result and the HTML report.
 */
import { readdir } from 'node:fs/promises';
import { SingleBar, Presets } from 'cli-progress';
import { parseDataset, type Dataset } from '../../../runtime/dataset.js';
import { evaluate } from '../../../runtime/evaluate.js';
import { readFileLimited } from '../../../drivers/storage/read-file.js';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import { deviceEnergyOf } from '../../../runtime/power/energy-constants.js';
import { EnergyModel } from '../../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../../runtime/power/inference-costs.js';
import { observedSummary } from '../../../runtime/power/model-summary.js';
import { parseAges } from '../../../runtime/hybrid/drift-sweep.js';
import type { GraphSummary } from '../../../runtime/model/inspect.js';
import type { AnalogBackend } from '../../../runtime/hybrid/analog-backend.js';
import { configurations, describeConfig, exploreDesignSpace, type DseConfig, type DseGrid, type Measured } from '../../../runtime/fleet/dse.js';
import { fleetReport } from '../../../runtime/fleet/report.js';
import { createRegistry, loadConfig, readModel, type GlobalOptions } from '../context.js';
import { writeReport } from './fleet-files.js';
import { formatTable } from '../table.js';

export interface DseOptions {
  models?: string[];
  profiles: string;
  adcBits: string;
  dacBits: string;
  tiles: string;
  ages: string;
  targets: string;
  data: string;
  limit?: number;
  quick?: boolean;
  out: string;
  html?: string;
  progress?: boolean;
}

/** Inferences one programming of the weights serves (as bench/energy). */
const AMORTISE_OVER = 100_000;

const numbers = (flag: string, list: string, ok: (n: number) => boolean): number[] => list.split(',').map((s) => {
  const n = Number(s.trim());
  if (!ok(n)) throw new Error(`--${flag}: bad value '${s}' in '${list}'`);
  return n;
});

/** The bundled models and their trained family (models/family/*.onnx). */
async function defaultModels(): Promise<string[]> {
  const family = (await readdir('models/family').catch(() => [])).filter((f) => f.endsWith('.onnx')).map((f) => `models/family/${f}`);
  return ['models/mlp.onnx', 'models/cnn.onnx', ...family].sort();
}

export async function fleetDseCommand(opts: DseOptions, global: GlobalOptions): Promise<void> {
  const quick = opts.quick ?? false;
  const grid: DseGrid = {
    models: opts.models ?? await defaultModels(),
    profiles: opts.profiles.split(',').map((s) => s.trim()).filter(Boolean),
    adcBits: numbers('adc-bits', opts.adcBits, (n) => Number.isInteger(n) && n >= 1 && n <= 16),
    dacBits: numbers('dac-bits', opts.dacBits, (n) => Number.isInteger(n) && n >= 1 && n <= 16),
    tiles: numbers('tiles', opts.tiles, (n) => Number.isInteger(n) && n >= 8 && n <= 8192),
    ages: opts.ages.split(',').map((s) => s.trim()).filter(Boolean),
  };
  const targets = numbers('targets', opts.targets, (n) => n > 0 && n <= 100).map((t) => t / 100);
  const ages = new Map(parseAges(grid.ages.join(',')).map((a) => [a.label, a.seconds]));
  for (const p of grid.profiles) loadProfile(p); // unknown profiles fail before any work
  const total = configurations(grid).length;
  const config = await loadConfig(global);
  const limit = opts.limit ?? (quick ? 200 : undefined);
  const dataset = parseDataset(await readFileLimited(opts.data, 1 << 30, 'dataset'), opts.data);
  const samples = Math.min(limit ?? dataset.count, dataset.count);
  const models = new Map<string, { summary: GraphSummary; loaded: Awaited<ReturnType<typeof readModel>> }>();
  const digitalRegistry = createRegistry(config);
  const bar = opts.progress !== false && process.stderr.isTTY
    ? new SingleBar({ stream: process.stderr, format: 'dse [{bar}] {value}/{total} points | {point}' }, Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { point: '' });
  try {
    const digital = await digitalRegistry.get('digital');
    const modelOf = async (path: string) => {
      let m = models.get(path);
      if (!m) {
        const loaded = await readModel(path, config);
        models.set(path, (m = { loaded, summary: await observedSummary(digital, loaded) }));
      }
      return m;
    };
    const measure = async (c: DseConfig): Promise<Measured> => {
      bar?.update({ point: describeConfig(c) });
      const { loaded, summary } = await modelOf(c.model);
      if (c.placement === 'digital') {
        const prepared = await digital.load(loaded);
        const r = await evaluate(prepared, dataset, { limit, batchSize: 1 });
        await prepared.dispose();
        const energy = new InferenceCostTable({ energy: new EnergyModel() }).add('m', summary).breakdown('m', 'digital', 8)!;
        return { accuracy: r.accuracy, energy, latencyMs: r.latency.meanMs, params: summary.params };
      }
      const overrides = { adc: { bits: c.adcBits }, dac: { bits: c.dacBits }, tile: { rows: c.tile, cols: c.tile } };
      const profile = loadProfile(c.profile, overrides);
      const registry = createRegistry({ ...config, analog: { ...config.analog, profile: c.profile } }, overrides);
      try {
        const backend = (await registry.get('analog')) as AnalogBackend;
        const hybrid = await backend.load(loaded);
        await backend.driver.setAge(ages.get(c.age)!);
        const r = await evaluate(hybrid, dataset, { limit, batchSize: 1 });
        await hybrid.dispose();
        const table = new InferenceCostTable({ energy: new EnergyModel(deviceEnergyOf(profile).energy), tile: { rows: c.tile, cols: c.tile }, dacBits: c.dacBits, amortiseOver: AMORTISE_OVER });
        const energy = table.add('m', summary).breakdown('m', 'analog', c.adcBits)!;
        return { accuracy: r.accuracy, energy, latencyMs: r.latency.meanMs, params: summary.params };
      } finally {
        await registry.dispose();
      }
    };
    const result = await exploreDesignSpace(grid, { samples, targets, measure, onPoint: (done) => bar?.update(done) });
    bar?.stop();
    const report = { kind: 'edgerun-fleet-report' as const, created: new Date().toISOString(), scenarios: [], dse: result };
    await writeReport(opts.out, report, opts.html, fleetReport(report));
    const pct = (x: number): string => (x * 100).toFixed(1);
    const nj = (j: number): string => (j * 1e9).toPrecision(3);
    console.log(formatTable(['point', 'params', 'accuracy %', 'nJ/inference', 'ms', 'Pareto'],
      result.points.map((p) => [p.id, p.params, pct(p.accuracy), nj(p.energyJ), p.latencyMs.toFixed(2), p.pareto ? '*' : '']), [false, true, true, true, true, false]));
    console.log(`\niso-accuracy (${samples} samples of ${opts.data}):`);
    console.log(formatTable(['target %', 'analog: least nJ', 'configuration', 'digital: least nJ', 'configuration', 'digital / analog'],
      result.isoAccuracy.map((r) => [pct(r.target), r.analog ? nj(r.analog.energyJ) : '-', r.analog?.id ?? 'none reaches it', r.digital ? nj(r.digital.energyJ) : '-', r.digital?.id ?? 'none reaches it', r.analogAdvantage ? `${r.analogAdvantage.toFixed(1)}×` : '-']),
      [true, true, false, true, false, true]));
    console.log(`\nresult: ${opts.out}${opts.html ? `, report: ${opts.html}` : ''}`);
  } finally {
    bar?.stop();
    await digitalRegistry.dispose();
  }
}
