/**
 * A battery for devices without a sensor and for fleet simulations: a capacity in Wh, drained by the
 * energy the runtime reports (consume) plus a constant idle power over device time (the Clock). Its
 * terminal voltage follows a Li-ion open-circuit-voltage curve against state of charge, minus the
 * drop over an internal resistance at the present current. Reads like a power_supply battery.
 */
import type { Clock } from '../../runtime/power/clock.js';
import type { PowerReading, PowerSensor, SensorDescription } from '../../runtime/power/sensor.js';

/**
 * Open-circuit voltage of one Li-ion (NMC) cell against state of charge, [SoC 0–1, volts], at 25 °C
 * and low rate. Approx.: the typical shape of NMC cell datasheets (3.0 V cut-off, flat 3.6–3.9 V
 * plateau, 4.2 V full); put your cell's datasheet curve in `ocvCurve` for real planning.
 */
export const LI_ION_OCV: readonly (readonly [number, number])[] = [
  [0, 3.0], [0.05, 3.45], [0.1, 3.6], [0.2, 3.7], [0.3, 3.75], [0.4, 3.79],
  [0.5, 3.83], [0.6, 3.88], [0.7, 3.94], [0.8, 4.0], [0.9, 4.08], [1, 4.2],
];

export interface SimulatedBatteryOptions {
  clock: Clock;
  capacityWh: number;
  /** State of charge at start, percent. */
  initialPct?: number;
  /** Cells in series. */
  cells?: number;
  /** Per-cell OCV curve, [SoC 0–1, volts], increasing in SoC. */
  ocvCurve?: readonly (readonly [number, number])[];
  /** Pack internal resistance, ohms (approx. 50 mΩ per small Li-ion cell). */
  internalOhms?: number;
  /** Drawn all the time: the board, sensors, radio. */
  idleW?: number;
  name?: string;
}

export class SimulatedBattery implements PowerSensor {
  readonly capacityWh: number;
  readonly idleW: number;
  #energyJ: number;
  #consumedJ = 0;
  /** Energy asked for after the battery was empty: the device would have browned out. */
  #shortfallJ = 0;
  #settledMs: number;
  #lastRead: { ts: number; consumedJ: number } | undefined;
  #watts = 0;

  constructor(private readonly options: SimulatedBatteryOptions) {
    if (!(options.capacityWh > 0)) throw new Error(`battery capacity must be positive, got ${options.capacityWh} Wh`);
    const pct = options.initialPct ?? 100;
    if (!(pct >= 0 && pct <= 100)) throw new Error(`initial charge must be 0–100 %, got ${pct}`);
    this.capacityWh = options.capacityWh;
    this.idleW = options.idleW ?? 0;
    this.#energyJ = (options.capacityWh * 3600 * pct) / 100;
    this.#settledMs = options.clock.now();
  }

  /** Energy the runtime reports (an inference, a programming of the array), drawn now. */
  consume(joules: number): void {
    if (!(joules >= 0) || !Number.isFinite(joules)) throw new Error(`consumed energy must be a finite number ≥ 0, got ${joules}`);
    this.#settle();
    this.#draw(joules);
  }

  get pct(): number {
    this.#settle();
    return (100 * this.#energyJ) / (this.capacityWh * 3600);
  }

  get consumedJ(): number {
    this.#settle();
    return this.#consumedJ;
  }

  get shortfallJ(): number {
    this.#settle();
    return this.#shortfallJ;
  }

  /** Watts: average power since the previous read(); joules: everything drawn since creation. */
  async read(): Promise<PowerReading> {
    this.#settle();
    const ts = this.options.clock.now();
    const last = this.#lastRead;
    if (last && ts > last.ts) this.#watts = ((this.#consumedJ - last.consumedJ) * 1000) / (ts - last.ts);
    else if (!last) this.#watts = this.idleW;
    this.#lastRead = { ts, consumedJ: this.#consumedJ };
    const soc = this.#energyJ / (this.capacityWh * 3600);
    const volts = this.#terminalVolts(soc, this.#watts);
    return {
      ts,
      watts: this.#watts,
      joules: this.#consumedJ,
      batteryPct: soc * 100,
      energyWh: this.#energyJ / 3600,
      energyFullWh: this.capacityWh,
      volts,
      amps: volts > 0 ? this.#watts / volts : 0,
      status: soc >= 1 ? 'Full' : 'Discharging',
    };
  }

  describe(): SensorDescription {
    const cells = this.options.cells ?? 1;
    return {
      id: `simulated:${this.options.name ?? 'battery'}`, kind: 'simulated', source: 'simulation',
      detail: `${this.capacityWh} Wh, ${cells}S Li-ion, idle ${this.idleW} W`, available: true,
    };
  }

  /** Open-circuit voltage of the pack at state of charge `soc` (0–1). */
  ocv(soc: number): number {
    const curve = this.options.ocvCurve ?? LI_ION_OCV;
    const s = Math.min(Math.max(soc, 0), 1);
    let i = 1;
    while (i < curve.length - 1 && curve[i]![0] < s) i++;
    const [s0, v0] = curve[i - 1]!;
    const [s1, v1] = curve[i]!;
    return (this.options.cells ?? 1) * (s1 === s0 ? v1 : v0 + ((v1 - v0) * (s - s0)) / (s1 - s0));
  }

  /** Idle power up to now. */
  #settle(): void {
    const now = this.options.clock.now();
    if (now > this.#settledMs) this.#draw((this.idleW * (now - this.#settledMs)) / 1000);
    this.#settledMs = Math.max(now, this.#settledMs);
  }

  #draw(joules: number): void {
    const taken = Math.min(joules, this.#energyJ);
    this.#energyJ -= taken;
    this.#consumedJ += taken;
    this.#shortfallJ += joules - taken;
  }

  /** V = OCV − I·R with P = V·I: the lower root of R·I² − OCV·I + P = 0. */
  #terminalVolts(soc: number, watts: number): number {
    const ocv = this.ocv(soc);
    const r = this.options.internalOhms ?? 0.05 * (this.options.cells ?? 1);
    if (r <= 0 || watts <= 0) return ocv;
    const disc = ocv * ocv - 4 * r * watts;
    const amps = disc > 0 ? (ocv - Math.sqrt(disc)) / (2 * r) : ocv / (2 * r);
    return ocv - amps * r;
  }
}
