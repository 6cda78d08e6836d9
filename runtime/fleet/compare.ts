/**
 * Two fleet results side by side: a figure that got worse by more than the threshold (relative) is
 * a regression. Scenarios match by scenario, mode and target QPS; design points by their id.
 */
import type { FleetReport } from './report.js';

export interface Change {
  what: string;
  before: number;
  after: number;
  /** Relative change in the bad direction (0.1 = 10 % worse); negative when it improved. */
  worse: number;
  regression: boolean;
}

export function compareReports(a: FleetReport, b: FleetReport, threshold: number): Change[] {
  if (!(threshold >= 0)) throw new Error(`threshold must be ≥ 0, got ${threshold}`);
  const changes: Change[] = [];
  const add = (what: string, before: number | undefined, after: number | undefined, higherIsBetter: boolean): void => {
    if (before === undefined || after === undefined) return;
    const worse = before === 0 ? (after === before ? 0 : higherIsBetter ? -1 : Infinity) : (higherIsBetter ? before - after : after - before) / Math.abs(before);
    changes.push({ what, before, after, worse, regression: worse > threshold });
  };
  const key = (s: FleetReport['scenarios'][number]): string => `${s.scenario} ${s.mode}${s.targetQps ? ` @${s.targetQps} QPS` : ''}`;
  const after = new Map(b.scenarios.map((s) => [key(s), s]));
  for (const s of a.scenarios) {
    const t = after.get(key(s));
    if (!t) continue;
    add(`${key(s)}: p${s.mode === 'accuracy' ? 50 : s.scenario === 'SingleStream' ? 90 : 99} latency ms`, s.percentileMs, t.percentileMs, false);
    add(`${key(s)}: samples/s`, s.samplesPerSecond, t.samplesPerSecond, true);
    add(`${key(s)}: accuracy`, s.accuracy, t.accuracy, true);
  }
  const points = new Map((b.dse?.points ?? []).map((p) => [p.id, p]));
  for (const p of a.dse?.points ?? []) {
    const q = points.get(p.id);
    if (!q) continue;
    add(`${p.id}: accuracy`, p.accuracy, q.accuracy, true);
    add(`${p.id}: J/inference`, p.energyJ, q.energyJ, false);
    add(`${p.id}: ms/inference`, p.latencyMs, q.latencyMs, false);
  }
  if (a.metrics && b.metrics) {
    add('fleet: p99 end-to-end ms', a.metrics.fleet.latency.p99Ms, b.metrics.fleet.latency.p99Ms, false);
    add('fleet: results/s', a.metrics.fleet.resultsPerSecond, b.metrics.fleet.resultsPerSecond, true);
    add('fleet: accuracy', a.metrics.fleet.accuracy, b.metrics.fleet.accuracy, true);
    add('fleet: J/inference', a.metrics.fleet.energyPerInferenceJ, b.metrics.fleet.energyPerInferenceJ, false);
    add('fleet: lost', a.metrics.fleet.lost, b.metrics.fleet.lost, false);
  }
  return changes;
}
