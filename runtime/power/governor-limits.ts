/**
 * The policy's limits as total device power now: the average power cap; an energy budget spread
 * over what is left of its period or mission; the battery energy above the reserve spread over what
 * is left of the mission (zero at or below the reserve). The tightest one binds.
 */
import type { EnergySpent } from './energy-spent.js';
import type { GovernorPolicy } from './policy.js';
import type { PowerReading } from './sensor.js';

export type LimitReason = 'power-cap' | 'energy-budget' | 'battery-reserve' | 'thermal' | 'headroom';

/** The figures a decision was taken on, watts unless named otherwise. */
export interface DecisionNumbers {
  /** Allowed inference power after idle, bias and headroom. */
  allowedW: number;
  /** Planned inference power before and after the step. */
  plannedW: number;
  plannedAfterW: number;
  /** The binding limit on total device power. */
  limitW?: number;
  idleW: number;
  biasW: number;
  measuredW?: number;
  capW?: number;
  budgetLeftJ?: number;
  batteryPct?: number;
  batteryLeftWh?: number;
  celsius?: number;
  remainingS?: number;
}

export type LimitNumbers = Omit<DecisionNumbers, 'allowedW' | 'plannedW' | 'plannedAfterW'>;

export interface TightestLimit {
  /** Undefined: nothing limits power. */
  watts?: number;
  reason: LimitReason;
  numbers: LimitNumbers;
}

export function tightestLimit(p: GovernorPolicy, at: { elapsedS: number; spent: EnergySpent; reading?: PowerReading; idleW: number; biasW: number; measuredW?: number }): TightestLimit {
  const { elapsedS, spent, reading } = at;
  const remainingS = p.missionS !== undefined ? p.missionS - elapsedS : undefined;
  const numbers: LimitNumbers = { idleW: at.idleW, biasW: at.biasW };
  const limits: { reason: LimitReason; watts: number }[] = [];

  if (p.powerCapW !== undefined) {
    numbers.capW = p.powerCapW;
    limits.push({ reason: 'power-cap', watts: p.powerCapW });
  }
  if (p.energyBudget) {
    const budgetJ = p.energyBudget.joules ?? p.energyBudget.wh! * 3600;
    const periodS = p.energyBudget.periodS;
    const leftJ = budgetJ - (periodS !== undefined ? spent.periodJ : spent.missionJ);
    numbers.budgetLeftJ = leftJ;
    if (periodS !== undefined) {
      // Never faster than the average rate: unspent energy is saved, so period ends do not swing the plan.
      limits.push({ reason: 'energy-budget', watts: Math.min(leftJ / (periodS - (elapsedS % periodS)), budgetJ / periodS) });
    } else if (remainingS !== undefined && remainingS > 0) {
      limits.push({ reason: 'energy-budget', watts: leftJ / remainingS });
    } else if (leftJ <= 0) {
      limits.push({ reason: 'energy-budget', watts: 0 });
    }
  }
  if (reading?.batteryPct !== undefined) numbers.batteryPct = reading.batteryPct;
  if (reading?.celsius !== undefined) numbers.celsius = reading.celsius;
  if (p.batteryReservePct !== undefined && reading?.batteryPct !== undefined) {
    const fullWh = reading.energyFullWh ?? p.batteryCapacityWh;
    const leftWh = reading.energyWh ?? (fullWh !== undefined ? (reading.batteryPct / 100) * fullWh : undefined);
    if (leftWh !== undefined) numbers.batteryLeftWh = leftWh;
    if (reading.batteryPct <= p.batteryReservePct) {
      limits.push({ reason: 'battery-reserve', watts: 0 });
    } else if (remainingS !== undefined && remainingS > 0 && leftWh !== undefined && fullWh !== undefined) {
      limits.push({ reason: 'battery-reserve', watts: ((leftWh - (p.batteryReservePct / 100) * fullWh) * 3600) / remainingS });
    }
  }
  if (remainingS !== undefined) numbers.remainingS = Math.max(remainingS, 0);
  if (at.measuredW !== undefined) numbers.measuredW = at.measuredW;

  const tightest = limits.reduce<{ reason: LimitReason; watts: number } | undefined>((a, b) => (!a || b.watts < a.watts ? b : a), undefined);
  if (!tightest) return { reason: 'headroom', numbers };
  numbers.limitW = tightest.watts;
  return { watts: tightest.watts, reason: tightest.reason, numbers };
}
