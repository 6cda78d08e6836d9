/**
 * Ports: the few ways runtime/ code reaches time (and, later, storage) without importing the OS.
 * drivers/ and tests provide the implementations. Kept minimal; extend, do not fork.
 */

/** Milliseconds on a monotonic scale (device time in simulations and tests). */
export interface Clock {
  now(): number;
}

/** Wall-independent monotonic time from the process (performance.now, sub-millisecond). */
export const monotonicClock: Clock = { now: () => performance.now() };
