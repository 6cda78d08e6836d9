import { describe, expect, it } from 'vitest';
import { LOADGEN_DEFAULTS, QUICK_SETTINGS, runScenario, searchServerQps, type SampleLibrary } from '../../runtime/fleet/loadgen.js';
import { VirtualTimeline, realTimeline } from '../../runtime/fleet/timeline.js';
import { Random } from '../../drivers/crossbar/random.js';
import { QueueSut } from './queue-sut.js';

const library: SampleLibrary = { count: 2000, label: (i) => i % 10 };

describe('load generator scenarios (virtual time, LoadGen default minimums)', () => {
  it('SingleStream: one query at a time, p90 equals the service distribution\'s (uniform 1..11 ms → 10 ms)', async () => {
    const timeline = new VirtualTimeline();
    const rng = new Random(1);
    const sut = new QueueSut(timeline, () => 1 + 10 * rng.uniform());
    const run = runScenario(sut, library, { scenario: 'SingleStream', mode: 'performance', settings: LOADGEN_DEFAULTS.SingleStream, timeline, uniform: () => rng.uniform() });
    timeline.run();
    const r = await run;
    expect(r.valid).toBe(true);
    expect(r.durationMs).toBeGreaterThanOrEqual(600_000);
    expect(r.queries).toBeGreaterThanOrEqual(1024);
    expect(r.percentileMs).toBeCloseTo(10, 0);
    expect(Math.abs(r.percentileMs - 10) / 10).toBeLessThan(0.01);
    // back to back: throughput is 1 / mean service time (6 ms)
    expect(r.samplesPerSecond).toBeGreaterThan(1000 / 6 * 0.98);
    expect(r.samplesPerSecond).toBeLessThan(1000 / 6 * 1.02);
  });

  it('MultiStream: 8 samples per query, metric p99 of query latency', async () => {
    const timeline = new VirtualTimeline();
    const rng = new Random(2);
    const sizes = new Set<number>();
    const sut = new QueueSut(timeline, (n) => { sizes.add(n); return n * (1 + rng.uniform()); });
    const run = runScenario(sut, library, { scenario: 'MultiStream', mode: 'performance', settings: LOADGEN_DEFAULTS.MultiStream, timeline, uniform: () => rng.uniform() });
    timeline.run();
    const r = await run;
    expect([...sizes]).toEqual([8]);
    expect(r.samples).toBe(r.queries * 8);
    expect(r.queries).toBeGreaterThanOrEqual(662);
    // 8 × uniform(1, 2) ms: p99 = 8 × 1.99 ms
    expect(Math.abs(r.percentileMs - 15.92) / 15.92).toBeLessThan(0.01);
    expect(r.valid).toBe(true);
  });

  it('Server: Poisson arrivals at the target rate; the search finds the M/M/1 p99 bound within 10 %', async () => {
    // M/M/1 (service exponential, mean 10 ms: μ = 100/s): sojourn time ~ Exp(μ − λ), so p99 = ln 100 / (μ − λ).
    // With a 100 ms bound the highest rate is λ* = μ − ln(100) / 0.1 s ≈ 53.9 QPS.
    const settings = { ...LOADGEN_DEFAULTS.Server, minQueryCount: 50_000, latencyBoundMs: 100 };
    const run = async (qps: number) => {
      const timeline = new VirtualTimeline();
      const rng = new Random(Math.round(qps * 1000));
      const sut = new QueueSut(timeline, () => -Math.log(1 - rng.uniform()) * 10);
      const p = runScenario(sut, library, { scenario: 'Server', mode: 'performance', settings: { ...settings, targetQps: qps }, timeline, uniform: () => rng.uniform() });
      timeline.run();
      return p;
    };
    const at30 = await run(30);
    expect(at30.queries).toBeGreaterThanOrEqual(50_000);
    expect(at30.queries / (at30.durationMs / 1000)).toBeGreaterThan(30 * 0.97); // arrivals at the offered rate
    expect(at30.queries / (at30.durationMs / 1000)).toBeLessThan(30 * 1.03);
    const search = await searchServerQps(run, { startQps: 10, tolerance: 0.01 });
    const expected = 100 - Math.log(100) / 0.1;
    expect(Math.abs(search.qps - expected) / expected).toBeLessThan(0.1);
    expect(search.best?.valid).toBe(true);
    expect(search.tried.some((t) => !t.valid)).toBe(true);
  });

  it('Offline: all samples in one query; throughput of a 4-worker SUT', async () => {
    const timeline = new VirtualTimeline();
    const rng = new Random(3);
    // a batch of n samples takes n / 4 ms (4 lanes at 1 ms each): 4000 samples/s
    const sut = new QueueSut(timeline, (n) => n / 4);
    const run = runScenario(sut, library, { scenario: 'Offline', mode: 'performance', settings: QUICK_SETTINGS.Offline, timeline, uniform: () => rng.uniform() });
    timeline.run();
    const r = await run;
    expect(r.queries).toBe(1);
    expect(r.samples).toBe(1024);
    expect(r.samplesPerSecond).toBeCloseTo(4000, 6);
    expect(r.valid).toBe(false); // 256 ms < the 10 s minimum: reported, not hidden
    expect(r.invalidBecause[0]).toMatch(/minimum 10000 ms/);
    // with the expected throughput given, the one query is sized to last 1.1 × the minimum duration, as LoadGen does
    const t2 = new VirtualTimeline();
    const sized = runScenario(new QueueSut(t2, (n) => n / 4), library, { scenario: 'Offline', mode: 'performance', settings: { ...QUICK_SETTINGS.Offline, expectedQps: 4000 }, timeline: t2, uniform: () => rng.uniform() });
    t2.run();
    const v = await sized;
    expect(v.samples).toBe(44_000);
    expect(v.valid).toBe(true);
  });

  it('accuracy mode covers every sample once and scores the predictions', async () => {
    const timeline = new VirtualTimeline();
    const rng = new Random(4);
    const seen: number[] = [];
    // right on 3 samples in 4
    const sut = new QueueSut(timeline, () => 1, 1, (i) => { seen.push(i); return i % 4 === 3 ? 99 : i % 10; });
    const run = runScenario(sut, library, { scenario: 'MultiStream', mode: 'accuracy', settings: LOADGEN_DEFAULTS.MultiStream, timeline, uniform: () => rng.uniform() });
    timeline.run();
    const r = await run;
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(r.accuracy).toBe(0.75);
    expect(r.valid).toBe(true);
  });

  it('Server on real timers keeps the offered rate above the timer resolution (late timers issue every due arrival)', async () => {
    const rng = new Random(5);
    const sut = new QueueSut(realTimeline, () => 0, 64);
    const r = await runScenario(sut, library, { scenario: 'Server', mode: 'performance', settings: { ...QUICK_SETTINGS.Server, minDurationMs: 1000, minQueryCount: 100, targetQps: 5000 }, timeline: realTimeline, uniform: () => rng.uniform() });
    // 1 s at 5000 QPS: ~5000 arrivals (Poisson: ± a few %), far beyond one per timer tick
    expect(r.queries).toBeGreaterThan(4500);
    expect(r.queries).toBeLessThan(5500);
  });

  it('refuses a Server run without a rate', () => {
    const timeline = new VirtualTimeline();
    expect(() => runScenario(new QueueSut(timeline, () => 1), library, { scenario: 'Server', mode: 'performance', settings: LOADGEN_DEFAULTS.Server, timeline, uniform: Math.random }))
      .toThrow(/target QPS/);
  });
});
