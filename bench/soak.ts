/**
 * The long soak: a real `edgerun serve` streaming through a real Mosquitto that is killed and
 * restarted, with the remote accelerator process SIGKILLed and SIGSTOPped, for as long as asked
 * (`node bin/run-ts.js bench/soak.ts --minutes 30 --rate 50`; not part of `npm run bench`, which
takes minutes in all). Prints
 * RSS and open descriptors of the device process (start, end, max, first vs second half), the
 * outbox's largest size on disk against its limit, results, duplicates and lost ones. The CI test
 * (test/soak/soak.test.ts) runs the same soak for two and a half minutes.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runSoak, type FaultKind } from '../test/helpers/soak.js';
import { fmt } from './measure.js';

const positive = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};

const CYCLE: FaultKind[] = ['broker SIGKILL', 'accelerator SIGKILL', 'broker SIGTERM', 'accelerator SIGSTOP'];

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const opts = new Command('soak')
    .option('--minutes <n>', 'length of the run', positive('--minutes'), 10)
    .option('--rate <hz>', 'results per second', positive('--rate'), 50)
    .option('--faults-per-minute <n>', 'broker and accelerator faults per minute, cycling through the four kinds', positive('--faults-per-minute'), 2)
    .exitOverride()
    .parse(argv, { from: 'user' })
    .opts<{ minutes: number; rate: number; faultsPerMinute: number }>();
  const faults = Array.from({ length: Math.max(1, Math.round(opts.minutes * opts.faultsPerMinute)) }, (_, i) => CYCLE[i % CYCLE.length]!);
  console.log(`\n# soak: edgerun serve at ${opts.rate} Hz for ${opts.minutes} min through a local Mosquitto, ${faults.length} faults (${CYCLE.join(', ')})`);
  const r = await runSoak({ durationMs: opts.minutes * 60_000, rateHz: opts.rate, faults, log: (l) => console.log(l) });
  const { samples: _s, ...figures } = r;
  console.log(`soak report: ${JSON.stringify(figures)}`);
  console.log([
    `results ${r.results}, received ${r.distinct} distinct, lost ${r.lost}, duplicates ${r.duplicates}; device exit ${r.deviceExit.code ?? r.deviceExit.signal}`,
    `RSS MiB start ${r.rssMiB.start}, end ${r.rssMiB.end}, max ${r.rssMiB.max}; median first half ${r.rssMiB.firstHalfMedian}, second half ${r.rssMiB.secondHalfMedian} (ratio ${fmt(r.rssMiB.secondHalfMedian / r.rssMiB.firstHalfMedian)}), trend ${r.rssMiB.slopePerHour} MiB/h`,
    `open fds start ${r.fds.start}, end ${r.fds.end}, max ${r.fds.max}; max first half ${r.fds.firstHalfMax}, second half ${r.fds.secondHalfMax}`,
    `outbox on disk max ${(r.outbox.maxBytes / 1024).toFixed(0)} KiB of ${(r.outbox.limitBytes / 1024).toFixed(0)} KiB allowed, ${(r.outbox.endBytes / 1024).toFixed(0)} KiB at the end`,
    `backends ${JSON.stringify(r.backends)}; ${r.faults.length} faults in ${r.seconds.toFixed(0)} s`,
  ].join('\n'));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
