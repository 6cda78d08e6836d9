/**
 * Side-by-side timing for noisy machines: the two variants run in alternating rounds inside one
 * process, and the ratio is the median of the per-round ratios.
 */
export interface Pair { baseline: () => Promise<unknown>; candidate: () => Promise<unknown> }

export interface PairResult { baselineUs: number; candidateUs: number; ratio: number }

export async function compare({ baseline, candidate }: Pair, rounds = 15, perRound = 200, warmup = 200): Promise<PairResult> {
  for (let i = 0; i < warmup; i++) { await baseline(); await candidate(); }
  const ratios: number[] = [];
  const base: number[] = [];
  const cand: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first so drift in machine load does not favour one side.
    const order = r % 2 === 0 ? [baseline, candidate] : [candidate, baseline];
    const times = new Map<unknown, number>();
    for (const fn of order) {
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) await fn();
      times.set(fn, ((performance.now() - t0) * 1000) / perRound);
    }
    base.push(times.get(baseline)!);
    cand.push(times.get(candidate)!);
    ratios.push(times.get(candidate)! / times.get(baseline)!);
  }
  return { baselineUs: median(base), candidateUs: median(cand), ratio: median(ratios) };
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
