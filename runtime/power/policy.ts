/**
 * Governor policies, validated: from the config file's `power.governor` section and from (signed)
 * commands, which send a partial policy merged over the current one.
 */
import { z } from 'zod';

export const GOVERNOR_ACTIONS = ['adc-bits', 'placement', 'rate', 'shed', 'pause'] as const;
export type ActionKind = (typeof GOVERNOR_ACTIONS)[number];

const energyBudgetSchema = z.strictObject({
  joules: z.number().positive().optional(),
  wh: z.number().positive().optional(),
  /** Budget per period of this many seconds; absent: one budget for the whole mission. */
  periodS: z.number().positive().optional(),
}).refine((b) => (b.joules === undefined) !== (b.wh === undefined), { message: 'give the budget in exactly one of joules or wh' });

export const governorPolicySchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Average power cap over the sliding window, watts. */
  powerCapW: z.number().positive().optional(),
  windowS: z.number().positive().max(86_400).default(60),
  energyBudget: energyBudgetSchema.optional(),
  /** Mission length from the governor's start: budgets and the battery reserve are planned to its end. */
  missionS: z.number().positive().optional(),
  /** Never plan below this state of charge, percent. */
  batteryReservePct: z.number().min(0).max(100).optional(),
  /** Battery capacity when the sensor reports a percentage but no energy. */
  batteryCapacityWh: z.number().positive().optional(),
  thermalLimitC: z.number().optional(),
  /** Degradation order: device-wide actions as listed; rate and shed apply to the lowest-priority streams first. */
  actions: z.array(z.enum(GOVERNOR_ACTIONS)).min(1).default([...GOVERNOR_ACTIONS])
    .refine((a) => new Set(a).size === a.length, { message: 'each action at most once' }),
  minAdcBits: z.number().int().min(1).max(24).default(4),
  /** Each rate step multiplies a stream's rate by this factor ... */
  rateFactor: z.number().gt(0).lt(1).default(0.5),
  /** ... down to this fraction of its nominal rate. */
  minRateFraction: z.number().gt(0).max(1).default(0.125),
  /** Plan to this fraction below a limit, for the error of the model and of the sensor. */
  headroom: z.number().min(0).lt(1).default(0.05),
  /** Undo a step only if the plan stays this fraction below the limit afterwards ... */
  hysteresis: z.number().min(0).lt(1).default(0.1),
  /** ... and this long after the previous step down (default: one window) ... */
  holdS: z.number().min(0).optional(),
  /** ... planning for the largest unmodelled draw (bias) seen over this long (default: ten windows). */
  peakHoldS: z.number().min(0).optional(),
  /** A step must save at least this share of the planned power to be worth taking. */
  minSaving: z.number().min(0).lt(1).default(0.01),
  /** The control period: tick() may be called after every inference, it re-plans at most this often. */
  tickS: z.number().min(0).max(3600).default(1),
  /** Time constant of the learnt bias (measured minus modelled power). */
  biasTauS: z.number().positive().default(15),
  /** Resume from a thermal step-down only this far below the limit. */
  thermalHysteresisC: z.number().min(0).default(5),
});

export type GovernorPolicy = z.infer<typeof governorPolicySchema>;
export type GovernorPolicyInput = z.input<typeof governorPolicySchema>;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** A partial policy (a command) over the current one; refused as a whole with every problem named. */
export function mergePolicy(current: GovernorPolicy | undefined, change: unknown, origin = 'policy'): GovernorPolicy {
  const base = current ?? {};
  const merged = typeof change === 'object' && change !== null && !Array.isArray(change) ? { ...base, ...change } : change;
  const result = governorPolicySchema.safeParse(merged);
  if (result.success) return result.data;
  throw new PolicyError(`invalid governor ${origin}:\n${result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`);
}
