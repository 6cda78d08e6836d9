/**
 * Why a bundle or a deployment was refused. The code is what `deploy/status` and `events` carry as
 * `reason`; the message is one line for a human.
 */
import { REJECT_REASONS, type RejectReason } from '../telemetry/commands.js';

const BUNDLE_REASONS = [
  'malformed', 'too-large', 'unsigned', 'unknown-key', 'forged-signature', 'hash-mismatch', 'transfer',
  'runtime-too-old', 'wrong-model', 'input-shape', 'downgrade', 'version-conflict', 'profile', 'self-test-failed', 'canary-failed',
  'interrupted', 'no-previous-version', 'storage-error', 'busy',
] as const;

/**
 * The bundle's and the deployment's own reasons, and the reasons the device's command listener
 * refuses the signed `deploy` command for (stale, replayed, wrong-device, ...: runtime/telemetry/
 * commands.ts), which the pusher reports as they are.
 */
export type DeployReason = (typeof BUNDLE_REASONS)[number] | RejectReason;
export const DEPLOY_REASONS: readonly DeployReason[] = [...BUNDLE_REASONS, ...REJECT_REASONS.filter((r) => !(BUNDLE_REASONS as readonly string[]).includes(r))];

export const isDeployReason = (v: unknown): v is DeployReason => (DEPLOY_REASONS as readonly unknown[]).includes(v);

export class DeployError extends Error {
  override readonly name = 'DeployError';
  constructor(readonly reason: DeployReason, message: string, readonly figures?: Record<string, unknown>) {
    super(message);
  }
}
