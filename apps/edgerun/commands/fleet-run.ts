/**
 * `edgerun fleet run`: one LoadGen scenario (or all) against one model on this machine's digital
 * or analog backend, with a progress bar, the JSON result and the HTML report. The load
 * generator's own CPU share is printed (it must not be the bottleneck).
 */
import { SingleBar, Presets } from 'cli-progress';
import { parseDataset } from '../../../runtime/dataset.js';
import { readFileLimited } from '../../../drivers/storage/read-file.js';
import { Random } from '../../../drivers/crossbar/random.js';
import { LOADGEN_DEFAULTS, QUICK_SETTINGS, SCENARIOS, runScenario, searchServerQps, type Scenario, type ScenarioResult, type ScenarioSettings } from '../../../runtime/fleet/loadgen.js';
import { ModelSut } from '../../../runtime/fleet/model-sut.js';
import { realTimeline } from '../../../runtime/fleet/timeline.js';
import { fleetReport, type FleetReport } from '../../../runtime/fleet/report.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';
import { writeReport } from './fleet-files.js';
import { interruptOnSignals } from '../fleet/interrupt.js';
import { formatTable } from '../table.js';

export interface FleetRunOptions {
  model: string;
  data: string;
  backend: string;
  scenario: string;
  mode: 'performance' | 'accuracy';
  quick?: boolean;
  qps?: number;
  latencyBound?: number;
  offlineQps?: number;
  seed: number;
  out: string;
  html?: string;
  progress?: boolean;
}

export async function fleetRunCommand(opts: FleetRunOptions, global: GlobalOptions & DeviceOptions): Promise<FleetReport> {
  const scenarios: Scenario[] = opts.scenario === 'all' ? [...SCENARIOS] : [opts.scenario as Scenario];
  if (!scenarios.every((s) => (SCENARIOS as readonly string[]).includes(s))) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')} or all, got '${opts.scenario}'`);
  if (scenarios.includes('Server') && opts.qps === undefined && (opts.mode === 'accuracy' || opts.latencyBound === undefined)) {
    throw new Error(opts.mode === 'accuracy' ? 'Server in accuracy mode needs --qps' : 'Server needs --qps (one run at that rate) or --latency-bound (search for the highest rate meeting it)');
  }
  const config = await loadConfig(global);
  const model = await readModel(opts.model, config);
  const dataset = parseDataset(await readFileLimited(opts.data, 1 << 30, 'dataset'), opts.data);
  const registry = createRegistry(config);
  const rng = new Random(opts.seed);
  const uniform = (): number => rng.uniform();
  const results: ScenarioResult[] = [];
  const cpu0 = process.cpuUsage(), wall0 = performance.now();
  const stop = interruptOnSignals((line) => console.error(`edgerun: ${line}`));
  try {
    const prepared = await (await registry.get(opts.backend)).load(model);
    const sut = new ModelSut(prepared, dataset);
    const settingsOf = (s: Scenario): ScenarioSettings => ({ ...(opts.quick ? QUICK_SETTINGS : LOADGEN_DEFAULTS)[s], ...(opts.latencyBound !== undefined ? { latencyBoundMs: opts.latencyBound } : {}), ...(opts.offlineQps !== undefined ? { expectedQps: opts.offlineQps } : {}) });
    const run = async (scenario: Scenario, settings: ScenarioSettings): Promise<ScenarioResult> => {
      const queries = opts.mode === 'accuracy' ? Math.ceil(dataset.count / (scenario === 'MultiStream' ? settings.samplesPerQuery : scenario === 'Offline' ? Infinity : 1)) : scenario === 'Offline' ? 1 : settings.minQueryCount;
      const bar = opts.progress !== false && process.stderr.isTTY
        ? new SingleBar({ stream: process.stderr, format: `${scenario}${settings.targetQps ? ` @ ${settings.targetQps.toFixed(1)} QPS` : ''} [{bar}] {value} queries (minimum ${queries}, ${settings.minDurationMs / 1000} s)` }, Presets.shades_classic)
        : undefined;
      bar?.start(queries, 0);
      if (!bar) console.error(`edgerun: ${scenario}${settings.targetQps ? ` @ ${settings.targetQps.toFixed(1)} QPS` : ''}: running (minimum ${queries} queries, ${settings.minDurationMs / 1000} s; Ctrl-C ends it with a partial report)`);
      try {
        const r = await runScenario(sut, sut.library, { scenario, mode: opts.mode, settings, timeline: realTimeline, uniform, onQueryDone: (n) => bar?.update(n), signal: stop.signal });
        if (sut.error) throw new Error(`the model failed during the run: ${sut.error.message}`);
        return r;
      } finally {
        bar?.stop();
      }
    };
    for (const scenario of scenarios) {
      if (stop.signal.aborted) break;
      const settings = settingsOf(scenario);
      if (scenario === 'Server' && opts.mode === 'performance' && opts.qps === undefined) {
        const search = await searchServerQps((qps) => run('Server', { ...settings, targetQps: qps }), { startQps: 10, tolerance: 0.05, maxRuns: opts.quick ? 12 : 30, signal: stop.signal });
        console.log(`Server: highest QPS meeting p99 ≤ ${opts.latencyBound} ms${search.interrupted ? ' (search interrupted)' : ''}: ${search.bracketed ? '' : 'at least '}${search.qps.toFixed(1)} (${search.tried.length} runs: ${search.tried.map((t) => `${t.qps.toFixed(1)}→${t.percentileMs} ms${t.valid ? '' : ' ✗'}`).join(', ')})`);
        if (search.best) results.push(search.best);
      } else {
        results.push(await run(scenario, { ...settings, ...(scenario === 'Server' ? { targetQps: opts.qps } : {}) }));
      }
    }
    await prepared.dispose();
  } finally {
    stop.dispose();
    await registry.dispose();
  }
  const cpu = process.cpuUsage(cpu0);
  // The SUT runs in this process too: this share is an upper bound on the load generator's.
  const share = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  const by = stop.by();
  const report: FleetReport = {
    kind: 'edgerun-fleet-report', created: new Date().toISOString(), scenarios: results,
    ...(by ? { interrupted: { signal: by, detail: `${results.length} of ${scenarios.length} scenario(s) run, the last one cut short` } } : {}),
  };
  await writeReport(opts.out, report, opts.html, fleetReport(report));
  console.log(formatTable(['scenario', 'mode', 'queries', 'samples', 's', 'metric ms', 'samples/s', 'accuracy %', 'valid'],
    results.map((r) => [r.scenario + (r.targetQps ? ` @ ${r.targetQps.toFixed(1)} QPS` : ''), r.mode, r.queries, r.samples, (r.durationMs / 1000).toFixed(1), `p${r.mode === 'accuracy' ? '-' : r.scenario === 'SingleStream' ? 90 : 99} ${r.percentileMs}`,
      r.samplesPerSecond.toFixed(1), r.accuracy === undefined ? '-' : (r.accuracy * 100).toFixed(2), r.valid ? 'yes' : `no: ${r.invalidBecause.join('; ')}`]),
    [false, false, true, true, true, true, true, true, false]));
  console.log(`process CPU / wall: ${(share * 100).toFixed(0)} % (load generator and model together)`);
  console.log(`result${by ? ` (partial: interrupted by ${by})` : ''}: ${opts.out}${opts.html ? `, report: ${opts.html}` : ''}`);
  if (by) process.exitCode = stop.exitCode();
  return report;
}
