/**
 * When things happen in a benchmark: the load generator schedules query arrivals on a Timeline.
 * realTimeline runs on the process's monotonic clock and timers; VirtualTimeline is a discrete-event
 * simulation on a ManualClock, so a 600 s scenario against a simulated system runs in milliseconds.
 */
import { monotonicClock, type Clock } from '../ports.js';
import { ManualClock } from '../power/clock.js';

export interface Timeline extends Clock {
  /** Calls `fn` at `ms` on this timeline's clock (at once, asynchronously, when `ms` is past); the result cancels the call. */
  at(ms: number, fn: () => void): () => void;
}

export const realTimeline: Timeline = {
  now: () => monotonicClock.now(),
  at: (ms, fn) => {
    const timer = setTimeout(fn, Math.max(0, ms - monotonicClock.now()));
    return () => clearTimeout(timer);
  },
};

/** Events in time order (ties in scheduling order); the clock jumps from one event to the next. */
export class VirtualTimeline implements Timeline {
  readonly clock: ManualClock;
  readonly #events: { ms: number; order: number; fn: (() => void) | undefined }[] = [];
  #order = 0;

  constructor(startMs = 0) {
    this.clock = new ManualClock(startMs);
  }

  now(): number {
    return this.clock.now();
  }

  at(ms: number, fn: () => void): () => void {
    const event: { ms: number; order: number; fn: (() => void) | undefined } = { ms: Math.max(ms, this.clock.now()), order: this.#order++, fn };
    // binary-heap push
    const h = this.#events;
    h.push(event);
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
    // A cancelled event stays in the heap and is skipped when its time comes.
    return () => { event.fn = undefined; };
  }

  /** Runs events until none is left; returns how many ran. */
  run(): number {
    let ran = 0;
    for (let e = this.#pop(); e; e = this.#pop()) {
      if (!e.fn) continue;
      this.clock.set(e.ms);
      e.fn();
      ran++;
    }
    return ran;
  }

  #pop(): { ms: number; order: number; fn: (() => void) | undefined } | undefined {
    const h = this.#events;
    const top = h[0];
    const last = h.pop();
    if (!top || !last || h.length === 0) return top;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
    return top;
  }
}

function before(a: { ms: number; order: number }, b: { ms: number; order: number }): boolean {
  return a.ms < b.ms || (a.ms === b.ms && a.order < b.order);
}
