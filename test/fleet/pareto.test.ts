import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { dominates, isoAccuracy, paretoFront, type DesignPoint } from '../../runtime/fleet/pareto.js';

const point = fc.record({
  id: fc.string(),
  placement: fc.constantFrom('analog' as const, 'digital' as const),
  // few distinct values, so ties (the hard case for dominance) are common
  accuracy: fc.integer({ min: 0, max: 6 }).map((x) => 0.8 + x / 50),
  energyJ: fc.integer({ min: 1, max: 6 }).map((x) => x * 1e-7),
  latencyMs: fc.integer({ min: 1, max: 6 }),
});

describe('Pareto front', () => {
  it('equals the brute-force set of non-dominated points', () => {
    fc.assert(fc.property(fc.array(point, { maxLength: 40 }), (points) => {
      const brute = points.filter((p) => !points.some((q) => dominates(q, p)));
      expect(paretoFront(points)).toEqual(brute);
    }), { numRuns: 300 });
  });

  it('keeps a trade-off and drops a point worse in everything', () => {
    const p = (id: string, accuracy: number, energyJ: number, latencyMs: number): DesignPoint => ({ id, placement: 'analog', accuracy, energyJ, latencyMs });
    const points = [p('accurate', 0.9, 3e-6, 2), p('frugal', 0.85, 1e-6, 2), p('fast', 0.85, 2e-6, 1), p('worse', 0.84, 3e-6, 3)];
    expect(paretoFront(points).map((x) => x.id)).toEqual(['accurate', 'frugal', 'fast']);
  });
});

describe('iso-accuracy', () => {
  it('answers, per target, the cheapest configuration on each placement', () => {
    const pts: DesignPoint[] = [
      { id: 'analog small 4b', placement: 'analog', accuracy: 0.84, energyJ: 1e-7, latencyMs: 1 },
      { id: 'analog small 8b', placement: 'analog', accuracy: 0.86, energyJ: 3e-7, latencyMs: 1 },
      { id: 'analog large 6b', placement: 'analog', accuracy: 0.885, energyJ: 5e-7, latencyMs: 2 },
      { id: 'analog large 8b', placement: 'analog', accuracy: 0.895, energyJ: 9e-7, latencyMs: 2 },
      { id: 'digital small', placement: 'digital', accuracy: 0.87, energyJ: 2e-6, latencyMs: 1 },
      { id: 'digital large', placement: 'digital', accuracy: 0.905, energyJ: 8e-6, latencyMs: 1 },
    ];
    const rows = isoAccuracy(pts, [0.85, 0.88, 0.9, 0.95]);
    expect(rows.map((r) => [r.target, r.analog?.id, r.digital?.id])).toEqual([
      [0.85, 'analog small 8b', 'digital small'],
      [0.88, 'analog large 6b', 'digital large'],
      [0.9, undefined, 'digital large'],
      [0.95, undefined, undefined],
    ]);
    expect(rows[0]!.analogAdvantage).toBeCloseTo(2e-6 / 3e-7, 9);
    expect(rows[2]!.analogAdvantage).toBeUndefined();
  });
});
