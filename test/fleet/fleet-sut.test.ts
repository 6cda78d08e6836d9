/**
 * The fleet as LoadGen's system under test (runtime/fleet/fleet-sut.ts), its parts on their own:
 * queries to devices in turn, completion only from results naming them, duplicates and foreign
 * results counted; agents' shares of a scenario; agents' results merged exactly.
 */
import { describe, expect, it } from 'vitest';
import { FleetSut, type DeviceQuery } from '../../runtime/fleet/fleet-sut.js';
import { loadShare, type AgentLoadSpec } from '../../runtime/fleet/fleet-protocol.js';
import { LOADGEN_DEFAULTS, QUICK_SETTINGS, mergeScenarioResults, runScenario, type ScenarioResult } from '../../runtime/fleet/loadgen.js';
import { VirtualTimeline } from '../../runtime/fleet/timeline.js';
import { LatencyRecorder } from '../../runtime/latency.js';
import { QueueSut } from './queue-sut.js';

function fleet(devices = ['a', 'b', 'c']) {
  const sent: { device: string; q: DeviceQuery }[] = [];
  const sut = new FleetSut({ run: 'r1', devices, dispatch: (device, q) => sent.push({ device, q }), wallClock: { now: () => 1000 } });
  const result = (q: DeviceQuery, k: number, cls: number, run = q.run) => ({ n: 0, class: cls, query: { run, id: q.id, k, of: q.of, issuedAt: q.issuedAt } });
  return { sut, sent, result };
}

describe('FleetSut', () => {
  it('issues whole queries to the devices in turn and completes one when every sample\'s result arrived, predictions in sample order', () => {
    const { sut, sent, result } = fleet();
    const done: (readonly number[] | undefined)[] = [];
    for (let id = 0; id < 4; id++) sut.issue({ id, samples: [10 + id, 20 + id] }, (p) => done.push(p));
    expect(sent.map((s) => s.device)).toEqual(['a', 'b', 'c', 'a']);
    expect(sent[1]!.q).toEqual({ run: 'r1', id: 1, samples: [11, 21], offset: 0, of: 2, issuedAt: 1000 });
    expect(sut.offerResult(result(sent[1]!.q, 1, 7))).toBe(true);
    expect(done).toHaveLength(0);
    sut.offerResult(result(sent[1]!.q, 0, 3));
    expect(done).toEqual([[3, 7]]);
    expect(sut.pending).toBe(3);
    expect(sut.counters()).toMatchObject({ issued: 4, samples: 8, completed: 1, duplicated: 0, unknown: 0 });
  });

  it('counts a second result for a sample as a duplicate (before and after completion), and ignores other runs\' results', () => {
    const { sut, sent, result } = fleet();
    let completions = 0;
    sut.issue({ id: 0, samples: [1, 2] }, () => completions++);
    const q = sent[0]!.q;
    sut.offerResult(result(q, 0, 1));
    sut.offerResult(result(q, 0, 1));
    sut.offerResult(result(q, 1, 1));
    sut.offerResult(result(q, 1, 1));
    expect(completions).toBe(1);
    expect(sut.offerResult(result(q, 0, 1, 'another-run'))).toBe(false);
    expect(sut.offerResult({ n: 3, class: 1 })).toBe(false);
    sut.offerResult({ class: 1, query: { run: 'r1', id: 99, k: 0, of: 1, issuedAt: 0 } });
    expect(sut.counters()).toMatchObject({ completed: 1, duplicated: 2, unknown: 1 });
  });

  it('spreads Offline\'s one large query over every device, each part naming its place in the query', () => {
    const { sut, sent, result } = fleet();
    let predictions: readonly number[] | undefined;
    const samples = Array.from({ length: 300 }, (_, i) => i);
    sut.issue({ id: 0, samples }, (p) => { predictions = p; });
    expect(sent.map((s) => [s.device, s.q.offset, s.q.samples.length])).toEqual([['a', 0, 100], ['b', 100, 100], ['c', 200, 100]]);
    for (const { q } of sent.reverse()) q.samples.forEach((s, k) => sut.offerResult(result(q, q.offset + k, s % 10)));
    expect(predictions).toEqual(samples.map((s) => s % 10));
  });
});

describe('a scenario over agents', () => {
  const load: AgentLoadSpec = { scenario: 'Server', mode: 'performance', settings: { ...QUICK_SETTINGS.Server, targetQps: 90, latencyBoundMs: 50 }, seed: 3 };

  it('gives each agent its share of the rate, of the minimum queries and of the sample library, with its own seed', () => {
    const parts = [{ from: 0, to: 2 }, { from: 2, to: 6 }].map((sh, i) => loadShare(load, { ...sh, total: 6 }, i));
    expect(parts.map((p) => p.settings.targetQps)).toEqual([30, 60]);
    expect(parts.map((p) => p.settings.minQueryCount)).toEqual([Math.ceil(662 / 3), Math.ceil((662 * 2) / 3)]);
    expect(parts.map((p) => p.librarySlice)).toEqual([{ from: 0, to: 2 / 6 }, { from: 2 / 6, to: 1 }]);
    expect(new Set(parts.map((p) => p.seed)).size).toBe(2);
    expect(parts.every((p) => p.settings.minDurationMs === 10_000 && p.settings.latencyBoundMs === 50)).toBe(true);
  });

  it('merges the agents\' results exactly: histograms added (percentiles of all queries), counts and offered rates summed, the bound judged on the merge', async () => {
    const run = async (qps: number, meanMs: number, seed: number): Promise<ScenarioResult> => {
      const timeline = new VirtualTimeline();
      let x = seed;
      const uniform = (): number => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648; };
      const sut = new QueueSut(timeline, () => -Math.log(1 - uniform()) * meanMs);
      const settings = { ...LOADGEN_DEFAULTS.Server, minDurationMs: 60_000, minQueryCount: 1000, targetQps: qps, latencyBoundMs: 40 };
      const done = runScenario(sut, { count: 100, label: () => 0 }, { scenario: 'Server', mode: 'performance', settings, timeline, uniform });
      timeline.run();
      return done;
    };
    // One agent's devices fast, the other's slow: each alone meets a 40 ms bound or not, the fleet's p99 is over both.
    const fast = await run(20, 2, 5), slow = await run(20, 9, 6);
    const settings = { ...LOADGEN_DEFAULTS.Server, minDurationMs: 60_000, minQueryCount: 2000, targetQps: 40, latencyBoundMs: 40 };
    const merged = mergeScenarioResults([fast, slow], settings);
    const all = new LatencyRecorder();
    all.add(fast.histogram!);
    all.add(slow.histogram!);
    expect(merged.percentileMs).toBe(all.at(99));
    expect(merged.queries).toBe(fast.queries + slow.queries);
    expect(merged.targetQps).toBe(40);
    expect(merged.durationMs).toBe(Math.max(fast.durationMs, slow.durationMs));
    expect(merged.percentileMs).toBeGreaterThan(fast.percentileMs);
    expect(merged.percentileMs).toBeLessThan(slow.percentileMs);
    expect(merged.valid).toBe(merged.percentileMs <= 40 && fast.invalidBecause.concat(slow.invalidBecause).every((w) => w.startsWith('p99 ')));
    expect(() => mergeScenarioResults([fast, { ...slow, scenario: 'Offline' }], settings)).toThrow(/cannot merge/);
  });
});
