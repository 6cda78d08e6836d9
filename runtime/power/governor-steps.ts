/**
 * The governor's knobs and the single steps that turn them, each with its inverse, and the choice of
 * the next step down: device-wide actions in the configured order; rate and shed always on the
 * lowest-priority streams still served, so a stream is touched only once every less important one
 * has been shed. On the way back up, what was given up last in the order is restored first
 * (service before accuracy), the latest step of a kind first.
 */
import type { GovernedStream, GovernedSystem } from './governed-system.js';
import type { InferenceCosts } from './inference-costs.js';
import type { ActionKind, GovernorPolicy } from './policy.js';
import type { Placement } from './work.js';

export interface Knobs {
  /** Undefined when there is no analog device. */
  adcBits?: number;
  placements: ReadonlyMap<string, Placement>;
  /** Current rate cap per stream. */
  rates: ReadonlyMap<string, number>;
  shed: ReadonlySet<string>;
  paused: boolean;
}

export type Step =
  | { kind: 'adc-bits'; from: number; to: number }
  | { kind: 'placement'; model: string; from: Placement; to: Placement }
  | { kind: 'rate'; stream: string; from: number; to: number }
  | { kind: 'shed'; stream: string }
  | { kind: 'pause' };

export function describeStep(s: Step, undo = false): string {
  switch (s.kind) {
    case 'adc-bits': return undo ? `ADC ${s.to} → ${s.from} bits` : `ADC ${s.from} → ${s.to} bits`;
    case 'placement': return undo ? `${s.model}: ${s.to} → ${s.from}` : `${s.model}: ${s.from} → ${s.to}`;
    case 'rate': return undo ? `${s.stream}: ${fmtHz(s.to)} → ${fmtHz(s.from)}` : `${s.stream}: ${fmtHz(s.from)} → ${fmtHz(s.to)}`;
    case 'shed': return undo ? `restore ${s.stream}` : `shed ${s.stream}`;
    case 'pause': return undo ? 'resume' : 'pause';
  }
}

const fmtHz = (hz: number): string => `${Number(hz.toPrecision(3))} Hz`;

export function applyStep(k: Knobs, s: Step, undo = false): Knobs {
  switch (s.kind) {
    case 'adc-bits': return { ...k, adcBits: undo ? s.from : s.to };
    case 'placement': return { ...k, placements: new Map(k.placements).set(s.model, undo ? s.from : s.to) };
    case 'rate': return { ...k, rates: new Map(k.rates).set(s.stream, undo ? s.from : s.to) };
    case 'shed': {
      const shed = new Set(k.shed);
      if (undo) shed.delete(s.stream);
      else shed.add(s.stream);
      return { ...k, shed };
    }
    case 'pause': return { ...k, paused: !undo };
  }
}

export async function performStep(system: GovernedSystem, s: Step, undo = false): Promise<void> {
  switch (s.kind) {
    case 'adc-bits': return system.setAdcBits(undo ? s.from : s.to);
    case 'placement': return system.setPlacement(s.model, undo ? s.from : s.to);
    case 'rate': return system.setStreamRate(s.stream, undo ? s.from : s.to);
    case 'shed': return undo ? system.restoreStream(s.stream) : system.shedStream(s.stream);
    case 'pause': return undo ? system.resume() : system.pause();
  }
}

/** Planned inference power of the streams served under these knobs, watts. */
export function inferenceWatts(k: Knobs, streams: readonly GovernedStream[], costs: InferenceCosts): number {
  if (k.paused) return 0;
  let w = 0;
  for (const s of streams) {
    if (k.shed.has(s.id)) continue;
    const rate = k.rates.get(s.id) ?? s.rateHz;
    if (rate > 0) w += rate * costs.joules(s.model, k.placements.get(s.model) ?? 'digital', k.adcBits ?? 8);
  }
  return w;
}

/** Candidate steps down, in the order the policy prefers them (one per action kind at most). */
export function candidateSteps(k: Knobs, streams: readonly GovernedStream[], costs: InferenceCosts, policy: GovernorPolicy, disabled: ReadonlySet<ActionKind>): Step[] {
  const served = streams.filter((s) => !k.shed.has(s.id));
  const lowest = Math.min(...served.map((s) => s.priority));
  const lowestClass = served.filter((s) => s.priority === lowest);
  const watts = (s: GovernedStream): number => inferenceWatts({ ...k, shed: new Set() }, [s], costs);
  const out: Step[] = [];
  for (const kind of policy.actions) {
    if (disabled.has(kind) || k.paused) continue;
    switch (kind) {
      case 'adc-bits': {
        const analogInUse = served.some((s) => k.placements.get(s.model) === 'analog');
        if (k.adcBits !== undefined && k.adcBits > policy.minAdcBits && analogInUse) out.push({ kind, from: k.adcBits, to: k.adcBits - 1 });
        break;
      }
      case 'placement': {
        // The move that saves the most power, given how often each model runs.
        let best: { step: Step; saving: number } | undefined;
        for (const model of new Set(served.map((s) => s.model))) {
          const from = k.placements.get(model) ?? 'digital';
          const to: Placement = from === 'analog' ? 'digital' : 'analog';
          const step: Step = { kind, model, from, to };
          const saving = inferenceWatts(k, streams, costs) - inferenceWatts(applyStep(k, step), streams, costs);
          if (saving > 0 && (!best || saving > best.saving)) best = { step, saving };
        }
        if (best) out.push(best.step);
        break;
      }
      case 'rate': {
        // The hungriest stream of the lowest class that can still slow down.
        const candidates = lowestClass.map((s) => {
          const from = k.rates.get(s.id) ?? s.rateHz;
          const floor = s.rateHz * policy.minRateFraction;
          return { s, from, to: Math.max(from * policy.rateFactor, floor) };
        }).filter((c) => c.to < c.from * (1 - 1e-9));
        candidates.sort((a, b) => watts(b.s) - watts(a.s));
        const c = candidates[0];
        if (c) out.push({ kind, stream: c.s.id, from: c.from, to: c.to });
        break;
      }
      case 'shed': {
        const victim = [...lowestClass].sort((a, b) => watts(b) - watts(a))[0];
        if (victim) out.push({ kind, stream: victim.id });
        break;
      }
      case 'pause':
        out.push({ kind: 'pause' });
        break;
    }
  }
  return out;
}

/** Index into `applied` of the step to undo first: latest kind in the action order, then the most recent. */
export function stepToUndo(applied: readonly Step[], policy: GovernorPolicy): number {
  let best = -1;
  let bestRank = -Infinity;
  applied.forEach((s, i) => {
    const rank = policy.actions.indexOf(s.kind) * 1e6 + i;
    if (rank > bestRank) {
      bestRank = rank;
      best = i;
    }
  });
  return best;
}
