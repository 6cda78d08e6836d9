/**
 * Fleet rollout in waves (AWS IoT Jobs / Greengrass style), without I/O: which devices a rollout
 * targets (from their retained births), how they split into cumulative waves, when a wave halts
 * the rollout, and the report. `edgerun deploy rollout` (apps/) pushes, waits and rolls back.
 */
import { z } from 'zod';

/** The birth fields a rollout reads from a device's retained `status`. */
const birthSchema = z.object({
  state: z.string(),
  device: z.string(),
  fleet: z.string(),
  group: z.string().optional(),
  runtime: z.string().optional(),
  modelVersions: z.record(z.string(), z.string()).optional(),
});

export interface RolloutTarget {
  device: string;
  group: string;
  runtime?: string;
  /** Model id → version the device served before the rollout. */
  modelVersions: Record<string, string>;
}

/** A device whose birth says no group is in the `default` group (as the config's default). */
export const DEFAULT_GROUP = 'default';

/**
 * The online devices of a fleet (optionally one group) from their births, ordered by device id so
 * the same fleet always gives the same waves. Offline devices and malformed births are skipped.
 */
export function selectTargets(births: readonly unknown[], fleet: string, group?: string): RolloutTarget[] {
  const byDevice = new Map<string, RolloutTarget>();
  for (const b of births) {
    const parsed = birthSchema.safeParse(b);
    if (!parsed.success || parsed.data.state !== 'online' || parsed.data.fleet !== fleet) continue;
    const g = parsed.data.group ?? DEFAULT_GROUP;
    if (group !== undefined && g !== group) continue;
    byDevice.set(parsed.data.device, {
      device: parsed.data.device, group: g, modelVersions: parsed.data.modelVersions ?? {},
      ...(parsed.data.runtime !== undefined ? { runtime: parsed.data.runtime } : {}),
    });
  }
  return [...byDevice.values()].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
}

/** `10%,50%,100%` → [10, 50, 100]: strictly increasing, each in (0, 100], the last 100. */
export function parseWaves(spec: string): number[] {
  const parts = spec.split(',').map((p) => p.trim());
  const waves = parts.map((p) => {
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(p);
    if (!m) throw new Error(`--waves: '${p}' is not a percentage (e.g. 10%,50%,100%)`);
    return Number(m[1]);
  });
  for (const [i, w] of waves.entries()) {
    if (w <= 0 || w > 100) throw new Error(`--waves: ${w}% is outside (0, 100]`);
    if (i > 0 && w <= waves[i - 1]!) throw new Error(`--waves: the percentages must increase (${waves[i - 1]}% then ${w}%)`);
  }
  if (waves[waves.length - 1] !== 100) throw new Error('--waves: the last wave must be 100% (every targeted device)');
  return waves;
}

/**
 * Splits devices (already ordered) into waves by cumulative percentages: wave i ends at
 * ceil(pct_i × n / 100) devices, and every wave takes at least one new device, so a percentage
 * that rounds to nothing still deploys one canary device. No devices: no waves.
 */
export function planWaves<T>(devices: readonly T[], percentages: readonly number[]): T[][] {
  const waves: T[][] = [];
  let done = 0;
  for (const pct of percentages) {
    if (done >= devices.length) break;
    const end = Math.min(devices.length, Math.max(done + 1, Math.ceil((pct * devices.length) / 100 - 1e-9)));
    waves.push(devices.slice(done, end));
    done = end;
  }
  return waves;
}

/** The outcome of one device's deployment: `active` counts as success, anything else as failure. */
export type DeviceOutcome = 'active' | 'failed' | 'rolled-back' | 'error';

/** The wave halts the rollout when its failure rate exceeds the threshold (exactly at it: goes on). */
export function waveHalts(outcomes: readonly DeviceOutcome[], abortFailureRate: number): { failureRate: number; halts: boolean } {
  const failures = outcomes.filter((o) => o !== 'active').length;
  const failureRate = outcomes.length ? failures / outcomes.length : 0;
  return { failureRate, halts: failureRate > abortFailureRate };
}

export interface DeviceRow {
  device: string;
  group: string;
  /** 1-based; undefined when the rollout halted before this device's wave. */
  wave?: number;
  outcome: DeviceOutcome | 'not-started';
  /** The version of the bundle's model the device serves now (after any rollback). */
  serving?: string;
  reason?: string;
  rolledBack?: boolean;
}

export interface RolloutReport {
  model: string;
  version: string;
  fleet: string;
  group?: string;
  waves: { wave: number; devices: string[]; failureRate: number; halted: boolean }[];
  halted: boolean;
  abortFailureRate: number;
  devices: DeviceRow[];
}

/**
 * One rollout's bookkeeping: the planned waves, each device's outcome as it arrives, the halt
 * decision after each wave, and the report (devices of waves never started keep their old version).
 */
export class Rollout {
  readonly waves: RolloutTarget[][];
  #rows = new Map<string, DeviceRow>();
  #waveResults: RolloutReport['waves'] = [];
  #halted = false;

  constructor(readonly o: { model: string; version: string; fleet: string; group?: string; targets: readonly RolloutTarget[]; percentages: readonly number[]; abortFailureRate: number }) {
    this.waves = planWaves(o.targets, o.percentages);
    for (const t of o.targets) {
      const serving = t.modelVersions[o.model];
      this.#rows.set(t.device, { device: t.device, group: t.group, outcome: 'not-started', ...(serving !== undefined ? { serving } : {}) });
    }
  }

  /** A device's final outcome; `serving` is the version it reported active (if it said). */
  record(wave: number, device: string, outcome: DeviceOutcome, detail: { serving?: string; reason?: string }): void {
    const row = this.#rows.get(device);
    if (!row) throw new Error(`device ${device} is not a target of this rollout`);
    Object.assign(row, { wave: wave + 1, outcome }, detail.serving !== undefined ? { serving: detail.serving } : {}, detail.reason !== undefined ? { reason: detail.reason } : {});
  }

  /** A device that was rolled back after its wave halted the rollout. */
  rolledBack(device: string, serving: string | undefined, ok: boolean, detail?: string): void {
    const row = this.#rows.get(device)!;
    row.rolledBack = ok;
    if (ok) row.serving = serving;
    else row.reason = `${row.reason ? `${row.reason}; ` : ''}rollback failed: ${detail ?? 'unknown'}`;
  }

  /** Closes a wave once every device in it has an outcome; true when the rollout goes on. */
  finishWave(wave: number): boolean {
    const devices = this.waves[wave]!.map((t) => t.device);
    const { failureRate, halts } = waveHalts(devices.map((d) => this.#rows.get(d)!.outcome as DeviceOutcome), this.o.abortFailureRate);
    this.#waveResults.push({ wave: wave + 1, devices, failureRate, halted: halts });
    this.#halted ||= halts;
    return !halts;
  }

  /** Devices of a wave that activated the new version (the ones a rollback applies to). */
  activated(wave: number): string[] {
    return this.waves[wave]!.map((t) => t.device).filter((d) => this.#rows.get(d)!.outcome === 'active');
  }

  report(): RolloutReport {
    return {
      model: this.o.model, version: this.o.version, fleet: this.o.fleet, ...(this.o.group !== undefined ? { group: this.o.group } : {}),
      waves: this.#waveResults, halted: this.#halted, abortFailureRate: this.o.abortFailureRate, devices: [...this.#rows.values()],
    };
  }
}
