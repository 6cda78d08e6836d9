/**
 * Why an accelerator request failed, in the few kinds the fallback logic and its counters care
 * about. Drivers throw AcceleratorError with a kind; anything else thrown by an accelerator path is
 * a driver error.
 */
export type FailureKind =
  /** The device (or its process) did not answer in time. */
  | 'timeout'
  /** The connection to the device broke, or it could not be reached. */
  | 'connection-lost'
  /** The device sent bytes that are not valid protocol. */
  | 'protocol-error'
  /** The device answered with an error, or the driver threw. */
  | 'driver-error'
  /** A health report said the device is unhealthy. */
  | 'unhealthy';

export class AcceleratorError extends Error {
  override readonly name = 'AcceleratorError';
  constructor(readonly kind: FailureKind, message: string) {
    super(message);
  }
}

export function failureKind(e: unknown): FailureKind {
  return e instanceof AcceleratorError ? e.kind : 'driver-error';
}

export function failureMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Settles like `p`, or rejects with a 'timeout' AcceleratorError after `ms`. The timeout is
 * confirmed one event-loop turn later: when the loop itself was blocked (a long inference, a
 * session being compiled), an answer that arrived meanwhile is read first instead of being
 * mistaken for a device that stopped answering.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const t = setTimeout(() => setImmediate(() => {
      if (!settled) reject(new AcceleratorError('timeout', `${what} took longer than ${ms} ms`));
    }), ms);
    p.then((v) => { settled = true; clearTimeout(t); resolve(v); }, (e: unknown) => { settled = true; clearTimeout(t); reject(e); });
  });
}
