/**
 * runtime/periodic.ts: a repeating timer that keeps its own phase through an event-loop stall, where
 * Node's setInterval re-arms from the moment the stall ended and so stays in step with every other
 * interval that was due (hundreds of fleet devices' telemetry merged into one burst).
 */
import { describe, expect, it } from 'vitest';
import { every } from '../runtime/periodic.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const block = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end) { /* a stalled event loop */ } };

describe('every', () => {
  it('keeps each timer on its own phase through a stall, where setInterval merges them', async () => {
    const period = 400;
    const t0 = performance.now();
    const runs = { a: [] as number[], b: [] as number[], ia: [] as number[], ib: [] as number[] };
    const a = every(period, () => runs.a.push(performance.now()));
    const ia = setInterval(() => runs.ia.push(performance.now()), period);
    await sleep(200); // b is half a period out of phase with a
    const b = every(period, () => runs.b.push(performance.now()));
    const ib = setInterval(() => runs.ib.push(performance.now()), period);
    await sleep(500);
    block(800); // both a and b (and both intervals) fall due during the stall
    await sleep(2000);
    a.stop(); b.stop(); clearInterval(ia); clearInterval(ib);
    // The stall ends near t0 + 1500, where the late runs of all four fire together; after it:
    const after = (ts: number[]): number[] => ts.filter((t) => t > t0 + 1560);
    // Our timers stay half a period apart after the stall: every run of b is far from every run of a.
    const a2 = after(runs.a), b2 = after(runs.b);
    expect(a2.length).toBeGreaterThan(2);
    expect(b2.length).toBeGreaterThan(2);
    const nearest = Math.min(...b2.map((tb) => Math.min(...a2.map((ta) => Math.abs(ta - tb)))));
    expect(nearest).toBeGreaterThan(100);
    // setInterval: after the stall both fire in the same turn, at the same phase, from then on.
    const ia2 = after(runs.ia), ib2 = after(runs.ib);
    expect(ia2.length).toBeGreaterThan(2);
    const gaps = ia2.slice(0, 3).map((t, i) => Math.abs(t - ib2[i]!));
    expect(Math.max(...gaps)).toBeLessThan(20);
  });

  it('skips whole periods missed in a long stall instead of firing them all at once', async () => {
    let n = 0;
    const p = every(50, () => { n++; });
    await sleep(10);
    block(520); // ten periods missed
    await sleep(30);
    const afterStall = n;
    expect(afterStall).toBeLessThanOrEqual(2); // the late run, perhaps the next on its phase; not the ten missed
    await sleep(260);
    p.stop();
    const stopped = n;
    expect(stopped - afterStall).toBeGreaterThanOrEqual(3);
    await sleep(120);
    expect(n).toBe(stopped);
  });
});
