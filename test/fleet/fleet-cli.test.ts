import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { edgerun } from '../helpers/cli.js';
import { dominates } from '../../runtime/fleet/pareto.js';
import type { FleetReport } from '../../runtime/fleet/report.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'edgerun-fleet-')); });
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('edgerun fleet dse', () => {
  it('measures a tiny sweep on the real backends; Pareto flags agree with brute-force dominance; iso-accuracy picks the cheapest', async () => {
    const out = join(dir, 'dse.json');
    const r = await edgerun(['fleet', 'dse', '--models', 'models/family/mlp-w0.25.onnx', '--adc-bits', '4,8', '--limit', '100', '--targets', '50,85,99', '--out', out, '--html', join(dir, 'dse.html'), '--no-progress']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const points = report.dse!.points;
    expect(points.map((p) => p.id)).toEqual(['mlp-w0.25 digital', 'mlp-w0.25 pcm ADC4 DAC7 tile256 age 1h', 'mlp-w0.25 pcm ADC8 DAC7 tile256 age 1h']);
    for (const p of points) {
      expect(p.pareto).toBe(!points.some((q) => dominates(q, p)));
      expect(p.accuracy).toBeGreaterThan(0.3);
      const parts = Object.entries(p.energy).filter(([k]) => k !== 'total').reduce((s, [, v]) => s + v, 0);
      expect(parts).toBeCloseTo(p.energyJ, 15);
    }
    // analog moves MACs off the CPU: far less energy per inference than digital
    expect(points[1]!.energyJ).toBeLessThan(points[0]!.energyJ / 10);
    const iso = report.dse!.isoAccuracy;
    expect(iso.map((x) => x.target)).toEqual([0.5, 0.85, 0.99]);
    for (const row of iso) {
      for (const placement of ['analog', 'digital'] as const) {
        const reaching = points.filter((p) => p.placement === placement && p.accuracy >= row.target);
        const best = reaching.sort((a, b) => a.energyJ - b.energyJ)[0];
        expect(row[placement]?.id).toBe(best?.id);
      }
    }
    expect(iso[2]!.analog).toBeUndefined();
    expect(r.stdout).toMatch(/iso-accuracy/);
  }, 120_000);

  it('refuses a bad sweep with one line and exit 2', async () => {
    const r = await edgerun(['fleet', 'dse', '--adc-bits', '4,x', '--out', join(dir, 'never.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("edgerun: --adc-bits: bad value 'x' in '4,x'");
    const p = await edgerun(['fleet', 'dse', '--profiles', 'nosuch', '--out', join(dir, 'never.json')]);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/unknown device profile 'nosuch'/);
    await expect(readFile(join(dir, 'never.json'))).rejects.toThrow(/ENOENT/);
  });
});

describe('edgerun fleet run', () => {
  it('accuracy mode runs every sample once through the real model and reports its accuracy', async () => {
    const out = join(dir, 'acc.json');
    const r = await edgerun(['fleet', 'run', 'models/family/mlp-w0.25.onnx', '--scenario', 'MultiStream', '--mode', 'accuracy', '--out', out, '--no-progress']);
    expect(r.code).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const metrics = JSON.parse(await readFile('models/metrics.json', 'utf8')) as Record<string, { subset_accuracy: number }>;
    expect(report.scenarios[0]!.samples).toBe(2000);
    expect(Math.abs(report.scenarios[0]!.accuracy! - metrics['mlp-w0.25']!.subset_accuracy)).toBeLessThanOrEqual(0.005);
  }, 120_000);
});

describe('edgerun fleet compare', () => {
  it('flags an injected regression (exit 1), passes an identical result (exit 0), refuses a foreign file (exit 2)', async () => {
    const base: FleetReport = {
      kind: 'edgerun-fleet-report', created: '2026-12-07T00:00:00Z',
      scenarios: [{ scenario: 'SingleStream', mode: 'performance', queries: 1024, samples: 1024, durationMs: 600_000, latency: { count: 1024, meanMs: 1, p50Ms: 1, p90Ms: 2, p99Ms: 3, maxMs: 4 }, percentileMs: 2, samplesPerSecond: 500, valid: true, invalidBecause: [], distribution: [] }],
    };
    const slower = structuredClone(base);
    slower.scenarios[0]!.percentileMs = 2.5; // 25 % worse p90
    await writeFile(join(dir, 'a.json'), JSON.stringify(base));
    await writeFile(join(dir, 'b.json'), JSON.stringify(slower));
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ kind: 'something-else' }));
    const same = await edgerun(['fleet', 'compare', join(dir, 'a.json'), join(dir, 'a.json')]);
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/no regression beyond 5 %/);
    const worse = await edgerun(['fleet', 'compare', join(dir, 'a.json'), join(dir, 'b.json')]);
    expect(worse.code).toBe(1);
    expect(worse.stdout).toMatch(/SingleStream performance: p90 latency ms\s+2\s+2\.5\s+25\.0 %\s+REGRESSION/);
    const lenient = await edgerun(['fleet', 'compare', join(dir, 'a.json'), join(dir, 'b.json'), '--threshold', '30']);
    expect(lenient.code).toBe(0);
    const bad = await edgerun(['fleet', 'compare', join(dir, 'a.json'), join(dir, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/not an edgerun fleet result: kind/);
  }, 60_000);
});
