/**
 * The bounded soak in CI (issue 12, Harden 4): two minutes of a real `edgerun serve` at 50 Hz
 * through a real Mosquitto that is SIGKILLed twice and stopped once, with the remote accelerator
 * process SIGKILLed once and SIGSTOPped once (test/helpers/soak.ts). The device process must stay
 * flat — RSS and open descriptors in the second half of the run no higher than in the first, within
 * a tolerance — its outbox must stay within its limit and shrink back once the broker is back, and
 * the listener must hold every result number. bench/soak.ts runs the same for as long as asked.
 */
import { expect, it } from 'vitest';
import { describeMosquitto } from '../helpers/mosquitto.js';
import { runSoak } from '../helpers/soak.js';

const RATE_HZ = 50;
const OUTBOX_LIMIT = 4 * 2 ** 20;

describeMosquitto('soak: a device streaming through broker restarts and accelerator faults', () => {
  it('RSS and open descriptors stay flat, the outbox bounded, nothing is lost', { timeout: 480_000 }, async () => {
    const r = await runSoak({
      durationMs: 120_000, rateHz: RATE_HZ, outboxMaxBytes: OUTBOX_LIMIT,
      faults: ['broker SIGKILL', 'accelerator SIGKILL', 'broker SIGTERM', 'accelerator SIGSTOP', 'broker SIGKILL'],
    });
    const { samples, ...figures } = r;
    console.log(`soak report: ${JSON.stringify(figures)}`);
    const context = JSON.stringify(figures);

    expect(r.deviceExit, context).toEqual({ code: 0, signal: null });
    expect(r.faults.map((f) => f.kind)).toEqual(['broker SIGKILL', 'accelerator SIGKILL', 'broker SIGTERM', 'accelerator SIGSTOP', 'broker SIGKILL']);
    // Nothing lost: every result number 0..N-1 at the listener (duplicates are allowed: QoS 1).
    expect(r.results).toBe(RATE_HZ * 120);
    expect({ distinct: r.distinct, lost: r.lost }).toEqual({ distinct: r.results, lost: 0 });
    // The faults did reach the device: results ran on the accelerator and fell back while it was away.
    expect(r.backends.analog).toBeGreaterThan(0);
    expect(r.backends['digital-fallback']).toBeGreaterThan(0);

    expect(samples.length).toBeGreaterThan(40);
    // Flat: the second half of the run holds no more memory or descriptors than the first, within
    // a tolerance for the garbage collector's timing and the sockets of a reconnect in progress.
    expect(r.rssMiB.secondHalfMedian, context).toBeLessThanOrEqual(r.rssMiB.firstHalfMedian * 1.2);
    expect(r.fds.secondHalfMax, context).toBeLessThanOrEqual(r.fds.firstHalfMax + 4);
    // Bounded: the journal never exceeds its limit, and shrinks back to at most two segments once
    // everything is acknowledged.
    expect(r.outbox.maxBytes, context).toBeLessThanOrEqual(OUTBOX_LIMIT);
    expect(r.outbox.maxBytes).toBeGreaterThan(0);
    expect(r.outbox.endBytes, context).toBeLessThanOrEqual(2 * (OUTBOX_LIMIT / 16));
  });
});
