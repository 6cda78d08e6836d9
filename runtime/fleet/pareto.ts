/**
 * The design-space questions: which configurations are worth having (the Pareto front over
 * accuracy ↑, energy per inference ↓, latency ↓), and, at a target accuracy, the least energy per
 * inference any configuration needs (iso-accuracy: a noisier device may need a larger model to get
 * there, so configurations are compared at equal accuracy, not one by one).
 */

export interface DesignPoint {
  /** A label that names the configuration (model, placement, bits, …). */
  id: string;
  /** 'analog' (hybrid on the crossbar) or 'digital' (CPU only). */
  placement: 'analog' | 'digital';
  /** Fraction correct, 0..1. */
  accuracy: number;
  /** Joules per inference. */
  energyJ: number;
  /** Milliseconds per inference. */
  latencyMs: number;
}

/** a is at least as good as b in every objective and better in one. */
export function dominates(a: DesignPoint, b: DesignPoint): boolean {
  const noWorse = a.accuracy >= b.accuracy && a.energyJ <= b.energyJ && a.latencyMs <= b.latencyMs;
  const better = a.accuracy > b.accuracy || a.energyJ < b.energyJ || a.latencyMs < b.latencyMs;
  return noWorse && better;
}

/** The points no other point dominates, in input order (sorting by energy first skips most comparisons). */
export function paretoFront<P extends DesignPoint>(points: readonly P[]): P[] {
  const byEnergy = [...points].sort((a, b) => a.energyJ - b.energyJ || b.accuracy - a.accuracy || a.latencyMs - b.latencyMs);
  const front = new Set<P>();
  for (const p of byEnergy) {
    // only points of energy ≤ p's can dominate it; they come earlier in this order
    let dominated = false;
    for (const q of byEnergy) {
      if (q.energyJ > p.energyJ) break;
      if (q !== p && dominates(q, p)) { dominated = true; break; }
    }
    if (!dominated) front.add(p);
  }
  return points.filter((p) => front.has(p));
}

export interface IsoAccuracyRow<P extends DesignPoint> {
  /** Target accuracy, 0..1. */
  target: number;
  /** The least-energy point reaching the target on each placement (absent when none does). */
  analog?: P;
  digital?: P;
  /** digital energy / analog energy at this accuracy (when both reach it). */
  analogAdvantage?: number;
}

/** For each target accuracy: the lowest energy per inference reaching it, analog vs digital. */
export function isoAccuracy<P extends DesignPoint>(points: readonly P[], targets: readonly number[]): IsoAccuracyRow<P>[] {
  const cheapest = (placement: DesignPoint['placement'], target: number): P | undefined => points
    .filter((p) => p.placement === placement && p.accuracy >= target)
    .reduce<P | undefined>((best, p) => (!best || p.energyJ < best.energyJ || (p.energyJ === best.energyJ && p.latencyMs < best.latencyMs) ? p : best), undefined);
  return targets.map((target) => {
    const analog = cheapest('analog', target);
    const digital = cheapest('digital', target);
    return {
      target, ...(analog ? { analog } : {}), ...(digital ? { digital } : {}),
      ...(analog && digital ? { analogAdvantage: digital.energyJ / analog.energyJ } : {}),
    };
  });
}
