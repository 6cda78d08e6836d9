/**
 * Measured energy from a sensor's readings: the energy counter's increments where the sensor has
 * one (RAPL, simulated battery), else power integrated between readings (trapezoids). Keeps a
 * sliding window for the average power the governor's cap is about, and the latest battery and
 * temperature figures.
 */
import type { PowerReading } from './sensor.js';
import { SlidingWindow } from './sliding-window.js';

export class PowerMeter {
  #joules = 0;
  #firstTs: number | undefined;
  #prev: PowerReading | undefined;
  #latest: PowerReading | undefined;
  readonly #window: SlidingWindow;
  /** Milliseconds the window's energy covers: readings need not tile the window exactly. */
  readonly #covered: SlidingWindow;

  constructor(options: { windowMs?: number; sensor?: string } = {}) {
    this.#window = new SlidingWindow(options.windowMs ?? 60_000);
    this.#covered = new SlidingWindow(options.windowMs ?? 60_000);
    this.sensor = options.sensor;
  }

  readonly sensor: string | undefined;

  /** Readings with an error are skipped: a gap, not a zero. */
  observe(reading: PowerReading): void {
    if (reading.error !== undefined) return;
    const prev = this.#prev;
    this.#latest = reading;
    if (reading.joules === undefined && reading.watts === undefined) return;
    this.#firstTs ??= reading.ts;
    if (prev && reading.ts > prev.ts) {
      let delta: number | undefined;
      if (reading.joules !== undefined && prev.joules !== undefined && reading.joules >= prev.joules) delta = reading.joules - prev.joules;
      else if (reading.watts !== undefined) delta = ((prev.watts ?? reading.watts) + reading.watts) / 2 * ((reading.ts - prev.ts) / 1000);
      if (delta !== undefined) {
        this.#joules += delta;
        this.#window.add(reading.ts, delta);
        this.#covered.add(reading.ts, reading.ts - prev.ts);
      }
    }
    this.#prev = reading;
  }

  get hasData(): boolean {
    return this.#prev !== undefined && this.#firstTs !== undefined && this.#prev.ts > this.#firstTs;
  }

  /** Measured joules since the first reading. */
  get joules(): number {
    return this.#joules;
  }

  get coveredMs(): number {
    return this.#prev && this.#firstTs !== undefined ? this.#prev.ts - this.#firstTs : 0;
  }

  /** Average power over the readings of the window ending at `now`. */
  windowWatts(now: number): number {
    const covered = this.#covered.sum(now);
    return covered > 0 ? this.#window.sum(now) / (covered / 1000) : this.#latest?.watts ?? 0;
  }

  get latest(): PowerReading | undefined {
    return this.#latest;
  }
}
