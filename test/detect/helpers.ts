/** A detector daemon in-process on a real Mosquitto, with everything it publishes collected. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { resolveConfig, type Config } from '../../runtime/config.js';
import { parseDataset, type Dataset } from '../../runtime/dataset.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import type { FrameTiming } from '../../runtime/pipeline/detection-stream.js';
import type { FrameSource } from '../../runtime/pipeline/frame.js';
import { startDetector, type RunningDetector } from '../../apps/edgerun/commands/detect.js';

export const sprites: Dataset = parseDataset(new Uint8Array(readFileSync('models/data/fashion-mnist-test-2000.bin')), 'sprites');

export type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Collected {
  /** Envelope bodies by kind (events, detections, telemetry, status). */
  messages: { kind: string; body: Body }[];
  /** Raw payloads of snapshot/<label> and count/<label> (relative topics), and of homeassistant/… (full topics). */
  raw: Map<string, Buffer>;
  frames: FrameTiming[];
}

export interface Harness {
  detector: RunningDetector;
  got: Collected;
  events(type?: string): Body[];
  stop(): Promise<void>;
}

export async function startHarness(o: { url: string; device: string; source?: FrameSource; detect?: Record<string, unknown>; synthetic?: { width?: number; height?: number; seed?: number; frames?: number } }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-detect-'));
  const config: Config = resolveConfig({
    flags: {
      device: { id: o.device, fleet: 'test' }, placement: { default: 'digital' }, power: { sensor: 'none' },
      mqtt: { protocolVersion: 5, telemetryIntervalMs: 500 }, security: { keyDir: join(dir, 'keys') },
      detect: { fps: 10, ...o.detect },
    },
  });
  const got: Collected = { messages: [], raw: new Map(), frames: [] };
  const client = await mqtt.connectAsync(o.url, { protocolVersion: 5 });
  const root = `${config.mqtt.prefix}/test/${o.device}`;
  client.on('message', (topic, payload) => {
    if (topic.startsWith('homeassistant/')) return void got.raw.set(topic, payload);
    const rest = topic.slice(root.length + 1);
    if (rest.startsWith('snapshot/') || rest.startsWith('count/')) got.raw.set(rest, payload);
    else got.messages.push({ kind: rest, body: decodeMessage<Body>(payload).message.body });
  });
  await client.subscribeAsync([`${root}/#`, 'homeassistant/#'], { qos: 1 });
  const detector = await startDetector({
    config, stateDir: dir, url: o.url, source: o.source, synthetic: o.synthetic, onFrame: (t) => got.frames.push(t),
  });
  return {
    detector, got,
    events: (type) => got.messages.filter((m) => m.kind === 'events' && (type === undefined || m.body.type === type)).map((m) => m.body),
    async stop() {
      await detector.stop({ drainMs: 5000 });
      await client.endAsync();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
