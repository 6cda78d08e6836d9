/** Why an accepted request produced no result. */
export type DropReason =
  /** Its deadline passed while it was queued: it was not run. */
  | 'expired'
  /** The stream was full and its policy shed this request. */
  | 'shed'
  /** The scheduler closed before it ran. */
  | 'closed';

export class RequestDroppedError extends Error {
  override readonly name = 'RequestDroppedError';
  constructor(readonly reason: DropReason, readonly stream: string, message: string) {
    super(message);
  }
}
