/**
 * The operator's end of a deployment to one device over MQTT: sends the signed `deploy` command,
 * then follows the device's `deploy/status` and sends the chunk windows it asks for (./transfer.ts)
 * — from wherever it stands, so a device that restarts or reconnects mid-transfer resumes — until
 * the deployment ends (`active`, `failed`, `rolled-back`). A command the device rejects ends it too.
 * With `url` the device downloads the bundle itself and only the command is sent.
 */
import nacl from 'tweetnacl';
import { buildCommand, commandTopic } from '../telemetry/commands.js';
import { decodeMessage, type Encoding, type SignatureVerifier, type SigningKey } from '../telemetry/envelope.js';
import type { MqttPort } from '../telemetry/mqtt-port.js';
import { deployChunkTopic, deviceTopic, type DeviceAddress } from '../telemetry/topics.js';
import { isDeployReason } from './errors.js';
import type { DeployStatus } from './installer.js';
import { sha256Hex } from './manifest.js';
import { CHUNK_WINDOW, chunkCount, encodeChunk } from './transfer.js';

export interface PushOptions {
  mqtt: MqttPort;
  address: DeviceAddress;
  bytes: Uint8Array;
  id: string;
  signer: SigningKey;
  /** Bytes per chunk (default 64 KiB). */
  chunkSize?: number;
  /** The device downloads from here instead (the bytes are only hashed). */
  url?: string;
  allowDowngrade?: boolean;
  encoding?: Encoding;
  /** Every status of this deployment the device reports. */
  onStatus?(status: DeployStatus): void;
  /** Gives up (rejects) after this long without a status from the device. */
  silenceMs: number;
  verify?: SignatureVerifier;
}

const FINAL = new Set(['active', 'failed', 'rolled-back']);

export async function pushBundle(o: PushOptions): Promise<DeployStatus> {
  const chunkSize = o.chunkSize ?? 64 * 1024;
  const total = chunkCount(o.bytes.byteLength, chunkSize);
  const statusTopic = deviceTopic(o.address, 'deploy/status');
  const eventsTopic = deviceTopic(o.address, 'events');
  const chunkTopic = deployChunkTopic(o.address, o.id);
  const nonce = Buffer.from(nacl.randomBytes(16)).toString('hex');
  let lastNext = -1;
  let silence: ReturnType<typeof setTimeout> | undefined;
  let off: (() => void) | undefined;

  const sendWindow = async (from: number): Promise<void> => {
    for (let i = from; i < Math.min(from + CHUNK_WINDOW, total); i++) {
      await o.mqtt.publish(chunkTopic, encodeChunk(i, o.bytes.subarray(i * chunkSize, Math.min((i + 1) * chunkSize, o.bytes.byteLength))), { qos: 1 });
    }
  };

  try {
    return await new Promise<DeployStatus>((resolve, reject) => {
      const quiet = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => reject(new Error(`device ${o.address.device} reported nothing for ${Math.round(o.silenceMs / 1000)} s`)), o.silenceMs);
      };
      off = o.mqtt.onMessage((m) => {
        if (m.topic !== statusTopic && m.topic !== eventsTopic) return;
        let body: Record<string, unknown>;
        try {
          body = decodeMessage(m.payload, 1 << 20, o.verify).message.body as Record<string, unknown>;
        } catch {
          return;
        }
        if (m.topic === eventsTopic) {
          // 'replayed' names a copy of this very command accepted before (a QoS 1 redelivery): the deployment is under way.
          if (body.type === 'command-rejected' && body.nonce === nonce && body.reason !== 'replayed') {
            // The listener's own reason (stale, unknown-key, forged-signature, ...); one this pusher does not know stays in the detail.
            const reason = isDeployReason(body.reason) ? body.reason : 'malformed';
            resolve({ id: o.id, state: 'failed', reason, detail: `the device rejected the deploy command: ${String(body.reason)}: ${String(body.detail)}`, active: {} });
          }
          if (body.type === 'command-result' && body.nonce === nonce && body.ok === false) resolve({ id: o.id, state: 'failed', reason: 'busy', detail: `the device refused the deployment: ${String(body.error)}`, active: {} });
          return;
        }
        if (body.id !== o.id) return; // the retained status of an earlier deployment
        const status = body as unknown as DeployStatus;
        quiet();
        o.onStatus?.(status);
        if (FINAL.has(status.state)) {
          resolve(status);
          return;
        }
        const next = status.transfer?.next;
        if (o.url === undefined && status.state === 'receiving' && next !== undefined && next < total && (next !== lastNext || status.transfer?.resumed || status.transfer?.resend)) {
          lastNext = next;
          sendWindow(next).catch(() => undefined); // a lost connection: the device's next report re-asks
        }
      });
      quiet();
      void (async () => {
        await o.mqtt.subscribe(statusTopic, 1);
        await o.mqtt.subscribe(eventsTopic, 1);
        const args = {
          id: o.id, sha256: sha256Hex(o.bytes), size: o.bytes.byteLength,
          ...(o.url !== undefined ? { url: o.url } : { chunkSize }),
          ...(o.allowDowngrade ? { allowDowngrade: true } : {}),
        };
        const payload = buildCommand({ device: o.address.device, name: 'deploy', args, signer: o.signer, nonce, encoding: o.encoding });
        await o.mqtt.publish(commandTopic(o.address, 'deploy'), payload, { qos: 1 });
      })().catch(reject);
    });
  } finally {
    clearTimeout(silence);
    off?.();
    await o.mqtt.unsubscribe(statusTopic).catch(() => undefined);
    await o.mqtt.unsubscribe(eventsTopic).catch(() => undefined);
  }
}
