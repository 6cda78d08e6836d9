/**
 * Time for the power code, in milliseconds. Only `now()` is needed: sensors stamp readings, windows
 * age out samples and missions count down. Defined here because no shared Clock port exists yet
 * (runtime/ports.ts); any object with `now(): number` in ms fits, so the shared one will too.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale (device time in simulations). */
  now(): number;
}

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
