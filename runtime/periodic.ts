/**
 * A repeating timer on its own schedule: each run is due one period after the previous run was due,
 * not after it ran. Node re-arms a late setInterval from the moment its batch of expired timers ran,
 * so after one event-loop stall every interval that was due stays in step with the others for good:
 * a fleet thread's hundreds of devices then publish telemetry (and commit outboxes) in one burst per
 * period instead of spread over it, and each stall that burst causes merges more timers into it.
 * Unref'd: a periodic chore never keeps a process alive.
 */
export interface Periodic {
  stop(): void;
}

export function every(periodMs: number, run: () => void): Periodic {
  let due = performance.now() + periodMs;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    timer = setTimeout(fire, Math.max(0, due - performance.now()));
    (timer as { unref?: () => void }).unref?.();
  };
  const fire = (): void => {
    if (stopped) return;
    // Periods missed whole (a stall longer than one) are skipped; the phase is kept.
    due += Math.max(1, Math.ceil((performance.now() - due) / periodMs)) * periodMs;
    arm();
    run();
  };
  arm();
  return { stop: () => { stopped = true; clearTimeout(timer); } };
}
