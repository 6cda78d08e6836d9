/** `edgerun fleet compare a.json b.json`: every figure side by side; exit 1 when one got worse by more than the threshold. */
import { compareReports } from '../../../runtime/fleet/compare.js';
import { readReport } from './fleet-files.js';
import { formatTable } from '../table.js';

export async function fleetCompareCommand(a: string, b: string, opts: { threshold: number; json?: boolean }): Promise<void> {
  const changes = compareReports(await readReport(a), await readReport(b), opts.threshold / 100);
  const regressions = changes.filter((c) => c.regression);
  if (opts.json) {
    console.log(JSON.stringify({ threshold: opts.threshold / 100, changes, regressions: regressions.length }));
  } else {
    if (changes.length === 0) console.log('nothing in common to compare');
    else console.log(formatTable(['figure', a, b, 'worse by', ''], changes.map((c) => [c.what, fmt(c.before), fmt(c.after), `${(c.worse * 100).toFixed(1)} %`, c.regression ? 'REGRESSION' : '']), [false, true, true, true, false]));
    console.log(regressions.length ? `${regressions.length} regression(s) beyond ${opts.threshold} %` : `no regression beyond ${opts.threshold} %`);
  }
  if (regressions.length) process.exitCode = 1;
}

const fmt = (v: number): string => (Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(3) : String(Number(v.toPrecision(6))));
