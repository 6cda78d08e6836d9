/**
 * Energy spent since a governor started, per budget period and for the whole mission: measured
 * (the meter's counter) when a sensor feeds one, else modelled inference energy plus idle power.
 */
import type { EnergyLedger } from './ledger.js';
import type { PowerMeter } from './power-meter.js';

export class EnergySpent {
  periodJ = 0;
  missionJ = 0;
  #periodIndex = 0;
  #lastMs: number;
  #lastMeterJ: number;
  #lastLedgerJ: number;

  constructor(private readonly startMs: number, private readonly sources: { meter?: PowerMeter; ledger?: EnergyLedger; idleW?: number }) {
    this.#lastMs = startMs;
    this.#lastMeterJ = sources.meter?.joules ?? 0;
    this.#lastLedgerJ = sources.ledger?.totalJ ?? 0;
  }

  /** Adds what was spent since the previous update; a new period (of periodS) starts from zero. */
  update(now: number, periodS?: number): void {
    const { meter, ledger, idleW = 0 } = this.sources;
    const delta = meter?.hasData
      ? meter.joules - this.#lastMeterJ
      : (ledger ? ledger.totalJ - this.#lastLedgerJ : 0) + (idleW * (now - this.#lastMs)) / 1000;
    this.#lastMeterJ = meter?.joules ?? 0;
    this.#lastLedgerJ = ledger?.totalJ ?? 0;
    this.#lastMs = now;
    const index = periodS ? Math.floor((now - this.startMs) / (periodS * 1000)) : 0;
    if (index !== this.#periodIndex) {
      this.#periodIndex = index;
      this.periodJ = 0;
    }
    this.periodJ += Math.max(delta, 0);
    this.missionJ += Math.max(delta, 0);
  }
}
