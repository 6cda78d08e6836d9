/**
 * `edgerun detect`: a camera's detection stream as a device daemon. A frame source (the synthetic
 * camera, ffmpeg for files / RTSP / HTTP / V4L2, or a directory of images) feeds the stream
 * pipeline — scheduler (latest frame wins), the detector on the device's placement (analog with
 * digital fallback) — and post-processing (runtime/pipeline/detection-stream.ts). Over MQTT:
 * `events` in Frigate's shape, optional rate-limited `detections`, retained JPEG snapshots and
 * per-label counts, telemetry (energy per frame), signed commands, optional Home Assistant discovery.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../../../runtime/config.js';
import { parseDataset } from '../../../runtime/dataset.js';
import { gridHeadOf, type GridHead } from '../../../runtime/detect/grid-head.js';
import { DetectionStream, type CameraState, type FrameTiming } from '../../../runtime/pipeline/detection-stream.js';
import type { FrameSource } from '../../../runtime/pipeline/frame.js';
import { StreamPipeline } from '../../../runtime/pipeline/stream-pipeline.js';
import { countTopic, deviceTopic, homeAssistantConfigTopic, snapshotTopic, type DeviceAddress } from '../../../runtime/telemetry/topics.js';
import type { MqttPort } from '../../../runtime/telemetry/mqtt-port.js';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import { SyntheticCamera } from '../../../drivers/sensors/synthetic-camera.js';
import { FfmpegSource } from '../../../drivers/sensors/ffmpeg-source.js';
import { ImageDirectorySource } from '../../../drivers/sensors/image-directory-source.js';
import type { EmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';
import type { Reporter } from '../../../runtime/telemetry/reporter.js';
import { createRegistry, loadConfig, readModel, type GlobalOptions } from '../context.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { FILE_LIMITS, readFileLimited, readTextLimited } from '../../../drivers/storage/read-file.js';
import { parseJson } from '../../../runtime/json.js';
import { packageRoot, version } from '../package-info.js';
import { attachCommands, type AttachedCommands } from '../device/commands.js';
import { deviceSensor, guardCanary, openReporting } from '../device/daemon.js';
import { modelIdOf } from '../device/device.js';

export const BUNDLED_DETECTOR = 'models/detector.onnx';
const SPRITES = 'models/data/fashion-mnist-test-2000.bin';

export interface DetectOptions {
  source?: string;
  camera?: string;
  fps?: number;
  model?: string;
  score?: number;
  nmsIou?: number;
  detectionsInterval?: number;
  snapshots?: boolean;
  haDiscovery?: boolean;
  zones?: string;
  /** Synthetic camera: frame size, seed, number of frames. */
  size?: string;
  seed?: number;
  frames?: number;
  seconds?: number;
  stateDir?: string;
  url?: string;
  quiet?: boolean;
}

export interface StartDetectorOptions {
  config: Config;
  stateDir: string;
  outboxDir?: string;
  url?: string;
  protocolVersion?: 4 | 5;
  /** Synthetic camera only. */
  synthetic?: { width?: number; height?: number; seed?: number; frames?: number };
  /** A source made by the caller instead of config.detect.source (tests, benches). */
  source?: FrameSource;
  onFrame?: (t: FrameTiming) => void;
  log?: (line: string) => void;
}

export interface RunningDetector {
  pipeline: StreamPipeline;
  stream: DetectionStream;
  source: FrameSource;
  reporter: Reporter;
  address: DeviceAddress;
  broker?: EmbeddedBroker;
  url: string;
  stop(opts?: { drainMs?: number }): Promise<void>;
}

/** config.detect.source as a frame source at the detector's input size. */
export async function frameSourceOf(config: Config, head: GridHead, synthetic: StartDetectorOptions['synthetic'] = {}): Promise<FrameSource> {
  const { source, fps } = config.detect;
  const [channels, height, width] = head.input;
  if (source === 'synthetic') {
    const sprites = parseDataset(await readFileLimited(join(packageRoot, SPRITES), FILE_LIMITS.binary, 'sprite set'), SPRITES);
    return new SyntheticCamera({ sprites, fps, width: synthetic.width ?? width, height: synthetic.height ?? height, seed: synthetic.seed ?? 1, frames: synthetic.frames });
  }
  if (source.startsWith('dir:')) return new ImageDirectorySource({ dir: source.slice(4), fps });
  if (channels !== 1 && channels !== 3) throw new Error(`the detector takes ${channels} channels; ffmpeg delivers 1 (grey) or 3 (RGB)`);
  // ffmpeg is restarted when it exits (a stream that drops, a camera unplugged), so a video file
  // that is not there would be retried forever: say so at once. Devices (/dev/video0) may come back.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(source) && !source.startsWith('/dev/') && !existsSync(source)) throw new Error(`--source ${source}: no such file (a video file, an rtsp:// or http(s):// URL, /dev/videoN, dir:<path> or synthetic)`);
  return new FfmpegSource({ input: source, width, height, channels, fps, stallMs: config.detect.stallMs });
}

/**
 * Retained topics this device owns: the latest payload of each is kept and published again on every
 * connect, so one set while the client was not connected (at start, during an outage) is on the
 * broker once it is back, not only when it next changes.
 */
function retainedTopics(mqtt: MqttPort, onError: (topic: string, e: Error) => void = () => undefined): (topic: string, payload: Uint8Array, qos: 0 | 1) => Promise<void> {
  const latest = new Map<string, { payload: Uint8Array; qos: 0 | 1 }>();
  const send = (topic: string, payload: Uint8Array, qos: 0 | 1): Promise<void> => mqtt.publish(topic, payload, { qos, retain: true }).catch((e: Error) => onError(topic, e));
  mqtt.onConnect(() => {
    for (const [topic, { payload, qos }] of latest) void send(topic, payload, qos);
  });
  return async (topic, payload, qos) => {
    latest.set(topic, { payload, qos });
    if (mqtt.connected) await send(topic, payload, qos);
  };
}

/** The camera's retained state on the broker: a snapshot and an object count per label. */
function cameraState(mqtt: MqttPort, address: DeviceAddress): CameraState {
  const publish = retainedTopics(mqtt);
  return {
    snapshot: (label, jpeg) => publish(snapshotTopic(address, label), jpeg, 0),
    count: (label, n) => publish(countTopic(address, label), new TextEncoder().encode(String(n)), 1),
  };
}

/**
 * Home Assistant MQTT discovery: one sensor per label (objects in view now) and one for the
 * device status, grouped under one HA device. The status template reads signed envelopes too.
 */
function homeAssistantConfigs(config: Config, address: DeviceAddress, labels: readonly string[]): { topic: string; payload: unknown }[] {
  const prefix = config.detect.homeAssistant.discoveryPrefix;
  const node = `edgerun_${address.fleet}_${address.device}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const camera = config.detect.camera;
  const device = { identifiers: [node], name: `edgerun ${address.device}`, manufacturer: 'edgerun', model: 'edgerun detect', sw_version: version };
  const message = "{% set m = (value_json.msg | from_json) if value_json.msg is defined else value_json %}";
  const availability = { availability_topic: deviceTopic(address, 'status'), availability_template: `${message}{{ m.body.state }}`, payload_available: 'online', payload_not_available: 'offline' };
  return [
    ...labels.map((label) => ({
      topic: homeAssistantConfigTopic(prefix, 'sensor', node, `${camera}_${label}_count`),
      payload: { name: `${camera} ${label} count`, unique_id: `${node}_${camera}_${label}_count`, state_topic: countTopic(address, label), state_class: 'measurement', icon: 'mdi:shape', device, ...availability },
    })),
    {
      topic: homeAssistantConfigTopic(prefix, 'sensor', node, 'status'),
      payload: { name: 'status', unique_id: `${node}_status`, state_topic: deviceTopic(address, 'status'), value_template: `${message}{{ m.body.state }}`, icon: 'mdi:chip', device },
    },
  ];
}

export async function startDetector(o: StartDetectorOptions): Promise<RunningDetector> {
  const { config } = o;
  const d = config.detect;
  const log = o.log ?? (() => undefined);
  const registry = createRegistry(config);
  const modelPath = d.model ?? join(packageRoot, BUNDLED_DETECTOR);
  const model = await readModel(modelPath, config);
  const head = gridHeadOf(model);
  const id = modelIdOf(modelPath);
  const source = o.source ?? await frameSourceOf(config, head, o.synthetic);
  const sensor = await deviceSensor(config);
  const canary = await guardCanary(config);
  const reporting = await openReporting({
    config, stateDir: o.stateDir, outboxDir: o.outboxDir ?? join(o.stateDir, 'outbox'), url: o.url, protocolVersion: o.protocolVersion, log,
    birth: { models: [id], camera: d.camera, source: source.description },
  });
  const { reporter, mqtt, address, broker, url, keyDir } = reporting;
  let pipeline: StreamPipeline;
  let commands: AttachedCommands | undefined;
  let stream: DetectionStream;
  try {
    pipeline = await StreamPipeline.create({
      config, registry, models: new Map([[id, model]]),
      // One request waiting at most: a newer frame replaces it (the latest frame wins).
      streams: [{ name: d.camera, options: { model: id, priority: 0, capacity: 1, policy: 'drop-oldest' }, rateHz: 0 }],
      profile: loadProfile(config.analog.profile), publisher: reporter, telemetryIntervalMs: config.mqtt.telemetryIntervalMs, sensor, canary, log,
      extraTelemetry: () => ({ detection: stream.counters, reporter: reporter.counters, ...(commands ? { commands: commands.processor.counters() } : {}) }),
    });
    commands = await attachCommands({ config, mqtt, reporter, address, keyDir, target: pipeline, log });
    stream = new DetectionStream({
      pipeline, stream: d.camera, head, publisher: reporter, state: cameraState(mqtt, address),
      scoreThreshold: d.scoreThreshold, nmsIou: d.nmsIou, tracker: d.tracker, zones: d.zones,
      detectionsIntervalMs: d.detectionsIntervalMs, snapshots: d.snapshots, stallMs: d.stallMs, onFrame: o.onFrame,
    });
  } catch (e) {
    await reporting.close(0);
    await registry.dispose();
    throw e;
  }
  if (d.homeAssistant.enabled) {
    const announce = retainedTopics(mqtt, (_, e) => log(`home assistant discovery: ${e.message}`));
    for (const c of homeAssistantConfigs(config, address, head.labels)) void announce(c.topic, new TextEncoder().encode(JSON.stringify(c.payload)), 1);
  }
  let stopping: Promise<void> | undefined;
  const stop = (opts: { drainMs?: number } = {}): Promise<void> => {
    stopping ??= (async () => {
      await source.stop();
      await stream.close();
      pipeline.halt();
      await pipeline.publishSnapshot().catch(() => undefined);
      await pipeline.close();
      await commands!.detach();
      await reporting.close(opts.drainMs ?? 10_000);
      await registry.dispose();
    })();
    return stopping;
  };
  try {
    reporting.connect();
    pipeline.start();
    await stream.start();
    await source.start(stream);
  } catch (e) {
    // A source that cannot start (a missing image directory) must not leave the broker, the
    // pipeline and the reporter running: the process could never exit.
    await stop({ drainMs: 0 }).catch(() => undefined);
    throw e;
  }
  log(`camera ${d.camera} (${source.description}) → ${id} → ${deviceTopic(address, 'events')} on ${redactUrl(url)}`);
  return { pipeline, stream, source, reporter, address, broker, url, stop };
}

const numberList = (s: string, what: string): [number, number] => {
  const m = /^(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`${what} ${s}: expected WxH, e.g. 192x144`);
  return [Number(m[1]), Number(m[2])];
};

async function readZones(file: string): Promise<unknown> {
  try {
    return parseJson(await readTextLimited(file, FILE_LIMITS.small, 'zones file'), file);
  } catch (e) {
    throw new Error(`--zones ${file}: ${(e as Error).message}`);
  }
}

export async function detectCommand(opts: DetectOptions, global: GlobalOptions): Promise<void> {
  const zones = opts.zones === undefined ? undefined : await readZones(opts.zones);
  const config = await loadConfig(global, {
    detect: {
      source: opts.source, camera: opts.camera, fps: opts.fps, model: opts.model, scoreThreshold: opts.score, nmsIou: opts.nmsIou,
      detectionsIntervalMs: opts.detectionsInterval, snapshots: opts.snapshots === false ? false : undefined, zones,
      ...(opts.haDiscovery ? { homeAssistant: { enabled: true } } : {}),
    },
  });
  const [width, height] = opts.size ? numberList(opts.size, '--size') : [undefined, undefined];
  const stateDir = resolve(opts.stateDir ?? config.mqtt.stateDir);
  const outboxDir = opts.stateDir || config.mqtt.outbox.dir === undefined ? undefined : resolve(config.mqtt.outbox.dir);
  const log = opts.quiet ? undefined : (line: string): void => console.log(line);
  const running = await startDetector({ config, stateDir, outboxDir, url: opts.url, log, synthetic: { width, height, seed: opts.seed, frames: opts.frames } });
  if (running.broker) console.log(`embedded MQTT broker: ${running.broker.url}  ${running.broker.wsUrl ?? ''}`);
  console.log(`detecting; watch with: npx edgerun listen --url ${redactUrl(running.url)} --kinds events${running.broker ? ' --protocol 4' : ''}`);
  const finished = await new Promise<string>((resolveStop) => {
    process.once('SIGINT', () => resolveStop('SIGINT'));
    process.once('SIGTERM', () => resolveStop('SIGTERM'));
    void running.stream.ended.then(() => resolveStop('source ended'));
    if (opts.seconds !== undefined) setTimeout(() => resolveStop('time'), opts.seconds * 1000).unref();
  });
  await running.stop();
  const c = running.stream.counters;
  console.log(`${finished}: ${c.frames} frames, ${c.processed} detected, ${c.skipped + c.superseded} skipped, ${c.badFrames} bad, ${c.sourceErrors} source errors`);
}
