/**
 * Side-by-side timing for noisy machines: the two variants run in alternating rounds inside one
 * process, and the ratio is the median of the per-round ratios.
 */
export interface Pair { baseline: () => Promise<unknown>; candidate: () => Promise<unknown> }

/**
 * Wall-clock medians and the median per-round ratio; `cpuRatio` is the same ratio over the process's
 * CPU time (user + system) in each round, which other jobs on a loaded machine disturb far less
 * than wall time (both variants must run on this thread for it to mean anything).
 */
export interface PairResult { baselineUs: number; candidateUs: number; ratio: number; cpuRatio: number }

export async function compare({ baseline, candidate }: Pair, rounds = 15, perRound = 200, warmup = 200): Promise<PairResult> {
  for (let i = 0; i < warmup; i++) { await baseline(); await candidate(); }
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const base: number[] = [];
  const cand: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first so drift in machine load does not favour one side.
    const order = r % 2 === 0 ? [baseline, candidate] : [candidate, baseline];
    const times = new Map<unknown, { wall: number; cpu: number }>();
    for (const fn of order) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) await fn();
      const c = process.cpuUsage(c0);
      times.set(fn, { wall: ((performance.now() - t0) * 1000) / perRound, cpu: c.user + c.system });
    }
    const b = times.get(baseline)!;
    const c = times.get(candidate)!;
    base.push(b.wall);
    cand.push(c.wall);
    ratios.push(c.wall / b.wall);
    cpuRatios.push(c.cpu / b.cpu);
  }
  return { baselineUs: median(base), candidateUs: median(cand), ratio: median(ratios), cpuRatio: median(cpuRatios) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const fmt = (x: number, digits = 2): string => x.toFixed(digits);

/** One line per figure, aligned, greppable: `name  value  (goal)  ok|MISS`. */
export function report(name: string, value: string, goal?: { text: string; met: boolean }): void {
  console.log(`${name.padEnd(52)} ${value.padStart(14)}${goal ? `   goal ${goal.text.padEnd(10)} ${goal.met ? 'ok' : 'MISS'}` : ''}`);
}
