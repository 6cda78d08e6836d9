/**
 * Signed commands for the daemon: B's CommandProcessor (runtime/telemetry/commands.ts) with this
 * device's trust store and replay memory (in its key directory, files 0600), subscribed on the
 * daemon's MQTT connection; outcomes and rejections go out as `events` through the reporter.
 */
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import type { Config } from '../../../runtime/config.js';
import { CommandProcessor, ReplayMemory, type CommandTarget } from '../../../runtime/telemetry/commands.js';
import { KEY_FILE_MAX_BYTES, TrustStore } from '../../../runtime/telemetry/keys.js';
import type { MqttPort } from '../../../runtime/telemetry/mqtt-port.js';
import type { DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { Publisher } from '../../../runtime/pipeline/stream-pipeline.js';

export interface AttachCommandsOptions {
  config: Config;
  mqtt: MqttPort;
  reporter: Publisher;
  address: DeviceAddress;
  /** The trust store's and replay file's directory (apps/edgerun/context.ts keyDirOf). */
  keyDir: string;
  target: CommandTarget;
  log?: (line: string) => void;
}

export interface AttachedCommands {
  processor: CommandProcessor;
  detach(): Promise<void>;
}

export async function attachCommands(o: AttachCommandsOptions): Promise<AttachedCommands> {
  const sec = o.config.security;
  const keys = new FsStorage(o.keyDir, 0o600, KEY_FILE_MAX_BYTES);
  const trust = await TrustStore.open(keys, sec.trustedKeysFile);
  const replay = await ReplayMemory.open(keys, sec.replayFile);
  const processor = new CommandProcessor({
    address: o.address, trust, replay, windowMs: sec.commandWindowMs, maxBytes: sec.maxCommandBytes, target: o.target, verify: nativeVerify,
    report: (event) => {
      o.log?.(`command ${JSON.stringify(event)}`);
      return o.reporter.publish('events', event);
    },
  });
  const detach = processor.attach(o.mqtt);
  return {
    processor,
    async detach() {
      await detach();
      await keys.close();
    },
  };
}
