/**
 * Why a bundle or a deployment was refused. The code is what `deploy/status` and `events` carry as
 * `reason`; the message is one line for a human.
 */
export const DEPLOY_REASONS = [
  'malformed', 'too-large', 'unsigned', 'unknown-key', 'forged-signature', 'hash-mismatch', 'transfer',
  'runtime-too-old', 'wrong-model', 'input-shape', 'downgrade', 'version-conflict', 'profile', 'self-test-failed', 'canary-failed',
  'interrupted', 'no-previous-version', 'storage-error', 'busy',
] as const;
export type DeployReason = (typeof DEPLOY_REASONS)[number];

export class DeployError extends Error {
  override readonly name = 'DeployError';
  constructor(readonly reason: DeployReason, message: string, readonly figures?: Record<string, unknown>) {
    super(message);
  }
}
