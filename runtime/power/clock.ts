/**
 * Time for the power code, in milliseconds: the shared Clock port (runtime/ports.ts). Sensors stamp
 * readings, windows age out samples and missions count down with it; tests and fleet simulations
 * run hours of device time on a ManualClock.
 */
import type { Clock } from '../ports.js';

export type { Clock };

/** Wall-clock milliseconds, so readings carry a time people can read. */
export const systemClock: Clock = { now: () => Date.now() };

/** Device time that only moves when told to: hours of a mission in milliseconds of test time. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(startMs = 0) {
    this.#ms = startMs;
  }

  now(): number {
    return this.#ms;
  }

  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new Error(`a clock only moves forward by a finite amount, got ${ms} ms`);
    this.#ms += ms;
  }

  set(ms: number): void {
    if (ms < this.#ms) throw new Error(`a clock does not go back (from ${this.#ms} to ${ms} ms)`);
    this.#ms = ms;
  }
}
