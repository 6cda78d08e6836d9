/**
 * What the governor may turn: a narrow interface so it can be wired to the scheduler (rates,
 * shedding, pause) and the analog backend (ADC bits, placement) as they land, and to a simulated
 * device in tests. Calls may be async; a call that throws is reported and its action not retried.
 */
import type { Placement } from './work.js';

export interface GovernedSystem {
  setAdcBits(bits: number): void | Promise<void>;
  /** Run `model` on the analog device (hybrid) or entirely on the digital backend. */
  setPlacement(model: string, placement: Placement): void | Promise<void>;
  /** The most inferences per second `stream` may start. */
  setStreamRate(stream: string, hz: number): void | Promise<void>;
  /** Stop serving `stream` (its inputs are dropped and counted) ... */
  shedStream(stream: string): void | Promise<void>;
  /** ... and serve it again. */
  restoreStream(stream: string): void | Promise<void>;
  /** Stop / restart all inference. */
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
}

export interface GovernedStream {
  id: string;
  /** Higher is more important: shed last. */
  priority: number;
  /** The rate the application asks for, inferences per second. */
  rateHz: number;
  /** Which model's energy per inference applies (a name in the cost table). */
  model: string;
}
