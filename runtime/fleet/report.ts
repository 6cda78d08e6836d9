/**
 * The fleet report as one self-contained HTML page: inline SVG plots and tables, no scripts, no
 * network — it opens offline and from a mail attachment. Plots: latency distributions, throughput,
 * the Pareto front, energy breakdown; tables: scenarios, iso-accuracy.
 */
import type { EnergyBreakdown } from '../power/energy-model.js';
import type { DseResult, DsePoint } from './dse.js';
import type { Scenario, ScenarioResult } from './loadgen.js';
import type { DeviceFigures, FleetMetrics } from './metrics.js';

export interface FleetReport {
  kind: 'edgerun-fleet-report';
  created: string;
  scenarios: ScenarioResult[];
  dse?: DseResult;
  /** Figures collected from the devices' MQTT messages, when the run had devices. */
  metrics?: FleetMetrics;
  /** A run over the broker (`fleet bench`): each agent's share, its outcome and its figures; `metrics` is the whole fleet. */
  agents?: AgentSection[];
  /** A LoadGen scenario issued to the fleet's devices by a load generator (`fleet devices --scenario`); its runs are in `scenarios`. */
  fleetScenario?: FleetScenarioSection;
  /** Ended early by a signal: the report holds what was measured until then (a partial result, not valid). */
  interrupted?: { signal: string; detail: string };
}

export interface QpsSearchSummary {
  /** The highest QPS tried whose p99 met the bound (0 when none did). */
  qps: number;
  boundMs: number;
  /** False when every rate tried met the bound: qps is then only a lower bound. */
  bracketed: boolean;
  tried: { qps: number; percentileMs: number; valid: boolean }[];
  /** Ended by Ctrl-C/SIGTERM before the bracket closed. */
  interrupted?: true;
}

export interface FleetScenarioSection {
  scenario: Scenario;
  mode: 'performance' | 'accuracy';
  /** Devices the queries went to. */
  devices: number;
  /** The scenario's figure per LoadGen (scenarioMetric). */
  metric: ScenarioMetric;
  accuracy?: number;
  valid: boolean;
  search?: QpsSearchSummary;
  /** Over every run: queries issued, completed (every sample's result received), lost (issued, never completed), results duplicated or naming no issued query. */
  queries: { issued: number; samples: number; completed: number; lost: number; duplicated: number; unknown: number };
  /** The load generator's thread busy over wall time during the runs (event-loop utilisation). */
  loadGeneratorBusyShare: number;
  /** Over fleet agents: `results` messages their load generators received together (each agent hears its own devices: equals the samples completed). */
  resultsReceived?: number;
}

export interface ScenarioMetric { name: string; value: number; unit: string }

/** LoadGen's figure of a scenario: SingleStream p90 latency, MultiStream p99, Server the QPS (found, or run) meeting its p99 bound, Offline samples/s. */
export function scenarioMetric(r: ScenarioResult | undefined, search?: QpsSearchSummary): ScenarioMetric {
  if (search) return { name: `highest QPS with p99 ≤ ${search.boundMs} ms${search.bracketed ? '' : ' (at least)'}`, value: search.qps, unit: 'queries/s' };
  if (!r) return { name: 'no run', value: 0, unit: '' };
  switch (r.scenario) {
    case 'SingleStream': return { name: 'p90 latency', value: r.percentileMs, unit: 'ms' };
    case 'MultiStream': return { name: 'p99 latency (8 samples per query)', value: r.percentileMs, unit: 'ms' };
    case 'Server': return { name: `p99 latency at ${r.targetQps} QPS`, value: r.percentileMs, unit: 'ms' };
    case 'Offline': return { name: 'throughput', value: r.samplesPerSecond, unit: 'samples/s' };
  }
}

export interface AgentSection {
  agent: string;
  /** done: ran its share to the end; lost: went offline (its will) or fell silent; failed / refused: said so. */
  state: 'done' | 'failed' | 'lost' | 'refused';
  detail?: string;
  /** The devices of its share. */
  devices: string[];
  /** Devices of its share that no consumer heard a result from. */
  silent: string[];
  /** Its devices' figures merged (hdr histograms added, counts summed). */
  figures: DeviceFigures;
  /** Results its devices said they produced (done agents) that no consumer received. */
  unreceived?: number;
}

export const REPORT_PLOTS = ['latency', 'throughput', 'pareto', 'energy'] as const;

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];
const W = 720, H = 360, L = 70, R = 20, T = 20, B = 50;
const BREAKDOWN: (keyof EnergyBreakdown)[] = ['analogMac', 'dac', 'adc', 'digitalMac', 'digitalOp', 'sram', 'dram', 'programming'];

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const r1 = (v: number): number => Math.round(v * 10) / 10;
const fmt = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 1000 || Math.abs(v) < 0.01 ? v.toExponential(1) : v.toPrecision(3));

interface Axis { lo: number; hi: number; log: boolean; label: string }

function scale(a: Axis, from: number, to: number): (v: number) => number {
  const f = (v: number): number => (a.log ? Math.log10(v) : v);
  const lo = f(a.lo), hi = f(a.hi) === lo ? lo + 1 : f(a.hi);
  return (v) => r1(from + ((f(v) - lo) / (hi - lo)) * (to - from));
}

function axis(v: number[], log: boolean, label: string): Axis {
  const pos = log ? v.filter((x) => x > 0) : v;
  const lo = Math.min(...pos), hi = Math.max(...pos);
  return log ? { lo: lo / 1.2, hi: hi * 1.2, log, label } : { lo: Math.min(0, lo), hi: hi === lo ? hi + 1 : hi + (hi - lo) * 0.05, log, label };
}

/** Axes, ticks and labels around `body`; bar charts number their bars instead of x ticks. */
function frame(x: Axis, y: Axis, body: string, title: string, xTicks = true): string {
  const sx = scale(x, L, W - R), sy = scale(y, H - B, T);
  const ticks = (a: Axis, n: number): number[] => a.log
    ? Array.from({ length: n + 1 }, (_, i) => 10 ** (Math.log10(a.lo) + (i * (Math.log10(a.hi) - Math.log10(a.lo))) / n))
    : Array.from({ length: n + 1 }, (_, i) => a.lo + (i * (a.hi - a.lo)) / n);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`
    + `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`
    + (xTicks ? ticks(x, 5).map((v) => `<text x="${sx(v)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${fmt(v)}</text>`).join('') : '')
    + ticks(y, 5).map((v) => `<text x="${L - 6}" y="${sy(v) + 4}" font-size="11" text-anchor="end">${fmt(v)}</text>`).join('')
    + `<text x="${(L + W - R) / 2}" y="${H - 10}" font-size="12" text-anchor="middle">${esc(x.label)}</text>`
    + `<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(y.label)}</text>`
    + body + '</svg>';
}

function figure(name: (typeof REPORT_PLOTS)[number], title: string, svg: string | undefined, legend: string[] = []): string {
  const keys = legend.map((l, i) => `<span><i style="background:${COLOURS[i % COLOURS.length]}"></i>${esc(l)}</span>`).join(' ');
  return `<figure data-plot="${name}"><figcaption>${esc(title)}</figcaption>${svg ?? '<p class="none">no data in this run</p>'}${keys ? `<div class="legend">${keys}</div>` : ''}</figure>`;
}

function latencyPlot(scenarios: ScenarioResult[]): string {
  const shown = scenarios.filter((s) => s.distribution.length);
  if (!shown.length) return figure('latency', 'Latency distribution', undefined);
  const x = axis(shown.flatMap((s) => s.distribution.map((d) => d.ms)), true, 'latency, ms (log)');
  const y: Axis = { lo: 0, hi: 100, log: false, label: 'percentile' };
  const sx = scale(x, L, W - R), sy = scale(y, H - B, T);
  const lines = shown.map((s, i) => `<polyline fill="none" stroke-width="2" stroke="${COLOURS[i % COLOURS.length]}" points="${s.distribution.map((d) => `${sx(Math.max(d.ms, x.lo))},${sy(d.percentile)}`).join(' ')}"/>`).join('');
  return figure('latency', 'Latency distribution (percentile of queries completed within a latency)', frame(x, y, lines, 'latency distribution'), shown.map(label));
}

function label(s: ScenarioResult): string {
  return `${s.scenario}${s.targetQps ? ` @ ${fmt(s.targetQps)} QPS` : ''} (${s.mode})`;
}

function bars(name: 'throughput' | 'energy', title: string, rows: { label: string; parts: number[] }[], partNames: string[], yLabel: string): string {
  if (!rows.length) return figure(name, title, undefined);
  const y = axis(rows.map((r) => r.parts.reduce((a, b) => a + b, 0)), false, yLabel);
  const sy = scale(y, H - B, T);
  const slot = (W - L - R) / rows.length, bw = Math.max(2, slot * 0.7);
  const body = rows.map((r, i) => {
    let acc = 0;
    const x0 = r1(L + i * slot + (slot - bw) / 2);
    const rects = r.parts.map((v, k) => {
      const top = sy(acc + v), bottom = sy(acc);
      acc += v;
      return `<rect x="${x0}" y="${top}" width="${r1(bw)}" height="${r1(bottom - top)}" fill="${COLOURS[k % COLOURS.length]}"><title>${esc(`${r.label}: ${partNames[k]} ${fmt(v)}`)}</title></rect>`;
    }).join('');
    return rects + `<text x="${r1(x0 + bw / 2)}" y="${H - B + 30}" font-size="9" text-anchor="middle">${esc(String(i + 1))}</text>`;
  }).join('');
  const x: Axis = { lo: 0, hi: rows.length, log: false, label: 'bar (numbered as in the table)' };
  return figure(name, title, frame(x, y, body, title, false), partNames.length > 1 ? partNames : []);
}

function paretoPlot(points: DsePoint[]): string {
  if (!points.length) return figure('pareto', 'Pareto front', undefined);
  const x = axis(points.map((p) => p.energyJ * 1e9), true, 'energy per inference, nJ (log)');
  const y = axis(points.map((p) => p.accuracy * 100), false, 'accuracy, %');
  y.lo = Math.floor(Math.min(...points.map((p) => p.accuracy * 100)) - 1);
  const sx = scale(x, L, W - R), sy = scale(y, H - B, T);
  const dot = (p: DsePoint): string => `<circle cx="${sx(p.energyJ * 1e9)}" cy="${sy(p.accuracy * 100)}" r="${p.pareto ? 5 : 3}" fill="${p.placement === 'analog' ? COLOURS[0] : COLOURS[1]}" fill-opacity="${p.pareto ? 1 : 0.35}" stroke="${p.pareto ? '#000' : 'none'}"><title>${esc(`${p.id}: ${(p.accuracy * 100).toFixed(1)} %, ${fmt(p.energyJ * 1e9)} nJ, ${fmt(p.latencyMs)} ms${p.pareto ? ' (Pareto)' : ''}`)}</title></circle>`;
  const front = points.filter((p) => p.pareto).sort((a, b) => a.energyJ - b.energyJ);
  const line = `<polyline fill="none" stroke="#000" stroke-dasharray="4 3" points="${front.map((p) => `${sx(p.energyJ * 1e9)},${sy(p.accuracy * 100)}`).join(' ')}"/>`;
  return figure('pareto', 'Accuracy against energy per inference; outlined points are on the Pareto front (accuracy × energy × latency)', frame(x, y, line + points.map(dot).join(''), 'Pareto front'), ['analog (hybrid)', 'digital']);
}

function table(header: string[], rows: (string | number)[][], cls: string): string {
  return `<table class="${cls}"><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function fleetReport(report: FleetReport): string {
  const pct = (x: number): string => (x * 100).toFixed(1);
  const nj = (j: number): string => fmt(j * 1e9);
  const points = report.dse?.points ?? [];
  const energyRows = points.filter((p) => p.pareto).sort((a, b) => a.energyJ - b.energyJ);
  const sections = [
    `<h1>edgerun fleet report</h1><p>created ${esc(report.created)}</p>`,
    ...(report.interrupted ? [`<p class="interrupted">Partial: interrupted by ${esc(report.interrupted.signal)} (${esc(report.interrupted.detail)}); the figures are of what was measured until then.</p>`] : []),
    '<h2>Scenarios</h2>',
    report.scenarios.length
      ? table(['scenario', 'mode', 'queries', 'samples', 'duration s', 'metric ms', 'p50 ms', 'p99 ms', 'samples/s', 'accuracy %', 'valid'],
        report.scenarios.map((s) => [label(s), s.mode, s.queries, s.samples, (s.durationMs / 1000).toFixed(1), s.percentileMs, s.latency.p50Ms, s.latency.p99Ms, fmt(s.samplesPerSecond), s.accuracy === undefined ? '-' : pct(s.accuracy), s.valid ? 'yes' : `no: ${s.invalidBecause.join('; ')}`]), 'scenarios')
      : '<p class="none">no scenario in this run</p>',
    latencyPlot(report.scenarios),
    bars('throughput', 'Throughput, samples per second', report.scenarios.map((s) => ({ label: label(s), parts: [s.samplesPerSecond] })), ['samples/s'], 'samples/s'),
    ...(report.fleetScenario ? [fleetScenarioSection(report.fleetScenario)] : []),
    ...(report.agents ? [agentsSection(report.agents)] : []),
    ...(report.metrics ? [metricsSection(report.metrics)] : []),
    '<h2>Design space</h2>',
    report.dse ? `<p>${report.dse.points.length} points, accuracy on ${report.dse.samples} samples.</p>` : '<p class="none">no design-space sweep in this run</p>',
    paretoPlot(points),
    // shares, not joules: Pareto points span orders of magnitude (the totals are in the table below)
    bars('energy', 'Energy per inference by part, % of its total (Pareto points; totals in the table)', energyRows.map((p) => ({ label: p.id, parts: BREAKDOWN.map((k) => (p.energyJ > 0 ? (100 * p.energy[k]) / p.energyJ : 0)) })), BREAKDOWN, '% of energy per inference'),
    energyRows.length ? table(['bar', 'point', 'params', 'accuracy %', 'nJ', 'ms'], energyRows.map((p, i) => [i + 1, p.id, p.params, pct(p.accuracy), nj(p.energyJ), fmt(p.latencyMs)]), 'pareto') : '',
    '<h2>Iso-accuracy: least energy per inference reaching each accuracy</h2>',
    report.dse
      ? table(['target %', 'analog nJ', 'analog configuration', 'digital nJ', 'digital configuration', 'digital / analog'],
        report.dse.isoAccuracy.map((r) => [pct(r.target), r.analog ? nj(r.analog.energyJ) : '-', r.analog?.id ?? 'none reaches it', r.digital ? nj(r.digital.energyJ) : '-', r.digital?.id ?? 'none reaches it', r.analogAdvantage ? `${r.analogAdvantage.toFixed(1)}×` : '-']), 'iso-accuracy')
      : '<p class="none">no design-space sweep in this run</p>',
  ];
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgerun fleet report</title><style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:980px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.4em}.legend span{margin-right:1em}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}.none{color:#777}
</style></head><body>${sections.join('\n')}</body></html>\n`;
}

function fleetScenarioSection(f: FleetScenarioSection): string {
  const q = f.queries;
  return `<h2>Scenario across the fleet: ${esc(f.scenario)} (${esc(f.mode)}) over ${f.devices} devices</h2>`
    + table(['metric', 'value', 'accuracy %', 'valid', 'queries issued', 'completed', 'lost', 'duplicated results', 'unknown results', 'load generator busy %'],
      [[f.metric.name, `${fmt(f.metric.value)} ${f.metric.unit}`, f.accuracy === undefined ? '-' : (f.accuracy * 100).toFixed(1), f.valid ? 'yes' : 'no', q.issued, q.completed, q.lost, q.duplicated, q.unknown, (f.loadGeneratorBusyShare * 100).toFixed(1)]], 'fleet-scenario')
    + (f.search ? `<p>Server search, p99 bound ${f.search.boundMs} ms: each rate one run</p>`
      + table(['QPS', 'p99 ms', 'meets the bound'], f.search.tried.map((t) => [fmt(t.qps), t.percentileMs, t.valid ? 'yes' : 'no']), 'qps-search') : '');
}

function agentsSection(agents: AgentSection[]): string {
  return '<h2>Agents (each runs a share of the fleet)</h2>'
    + table(['agent', 'state', 'devices', 'silent devices', 'results', 'p50 ms', 'p99 ms', 'results/s', 'lost', 'unreceived', 'duplicated', 'detail'],
      agents.map((a) => [a.agent, a.state, a.devices.length, a.silent.length, a.figures.results, a.figures.latency.p50Ms, a.figures.latency.p99Ms, fmt(a.figures.resultsPerSecond),
        a.figures.lost, a.unreceived ?? '-', a.figures.duplicated, [a.detail, a.state === 'done' ? '' : `its devices: ${a.devices.join(', ')}`].filter(Boolean).join('; ')]), 'agents');
}

function metricsSection(m: FleetMetrics): string {
  const f = m.fleet;
  return '<h2>Devices (from their MQTT messages)</h2>'
    + table(['device', 'results', 'p50 ms', 'p99 ms', 'accuracy %', 'µJ/inference', 'avg W', 'battery %', 'fallbacks', 'guard/governor events', 'lost', 'duplicated'],
      [...Object.entries(m.devices), ['fleet', f] as const].map(([d, x]) => [d, x.results, x.latency.p50Ms, x.latency.p99Ms, x.accuracy === undefined ? '-' : (x.accuracy * 100).toFixed(1),
        x.energyPerInferenceJ === undefined ? '-' : fmt(x.energyPerInferenceJ * 1e6), x.averagePowerW === undefined ? '-' : fmt(x.averagePowerW),
        x.batteryPercent === undefined ? '-' : x.batteryPercent.toFixed(1), x.fallbacks, x.events, x.lost, x.duplicated]), 'devices')
    + `<p>load generator CPU share: ${m.loadGeneratorCpuShare === undefined ? 'not measured' : `${(m.loadGeneratorCpuShare * 100).toFixed(1)} %`}</p>`;
}
