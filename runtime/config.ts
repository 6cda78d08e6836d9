/**
 * One validated configuration, merged from defaults < config file (JSON) < environment
 * (EDGERUN_SECTION__KEY, e.g. EDGERUN_DIGITAL__THREADS=2) < command-line flags. Errors name the
 * offending field and where its value came from.
 */
import { z } from 'zod';
import { governorPolicySchema } from './power/policy.js';
import { JsonError, parseJson } from './json.js';
import { MAX_MODEL_MIB } from './model/load.js';

const placementPolicy = z.enum(['analog', 'digital', 'auto']);
const streamSchema = z.strictObject({
  model: z.string().min(1),
  priority: z.number().int().default(0),
  capacity: z.number().int().min(1).max(100_000).default(16),
  policy: z.enum(['drop-oldest', 'drop-newest', 'block']).default('drop-oldest'),
  deadlineMs: z.number().positive().optional(),
  batch: z.strictObject({ maxSize: z.number().int().min(1).max(4096), maxWaitMs: z.number().min(0) }).optional(),
});

export const configSchema = z.strictObject({
  device: z.strictObject({
    id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').default('edge-1'),
    fleet: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').default('default'),
    /** Deployment group within the fleet (named in the birth; `edgerun deploy rollout --group` targets it). */
    group: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').default('default'),
  }).prefault({}),
  digital: z.strictObject({
    /** WebAssembly threads for onnxruntime-web. */
    threads: z.number().int().min(1).max(64).default(1),
    graphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
  }).prefault({}),
  analog: z.strictObject({
    /** Device profile of the emulated crossbar: a name (ideal, pcm, flash) or a path to a JSON profile. */
    profile: z.string().min(1).default('pcm'),
    /** Device instance of the emulator (programming noise, drift exponents, faults). */
    seed: z.number().int().min(0).default(0),
    /** Layers that do not fit the device's free tiles stay digital (true) or the load fails (false). */
    fallbackOversized: z.boolean().default(true),
    /** Apply BatchNormalization, activations and pooling after an analog layer in the device's digital periphery (false: in onnxruntime). */
    periphery: z.boolean().default(true),
    /**
     * Keep only what inference reads of the emulated device: its programmed conductances and drift
     * exponents are drawn again from the seed when its age or temperature changes (same outputs; a
     * third of the memory, more CPU per age change). Fleet devices run lean.
     */
    lean: z.boolean().default(false),
  }).prefault({}),
  model: z.strictObject({
    /** Largest ONNX file accepted, in MiB (at most 2047: protobuf's 2 GiB limit). */
    maxSizeMiB: z.number().positive().max(MAX_MODEL_MIB).default(512),
  }).prefault({}),
  eval: z.strictObject({
    batchSize: z.number().int().min(1).max(4096).default(32),
  }).prefault({}),
  /** Where each model runs (runtime/backend.ts PlacementPolicy), by model id; `default` for the rest. */
  placement: z.strictObject({
    default: placementPolicy.default('auto'),
    models: z.record(z.string(), placementPolicy).default({}),
  }).prefault({}),
  scheduler: z.strictObject({
    /** Jobs each backend may run at once (accelerator tiles are shared; CPU work shares the event loop). */
    concurrency: z.record(z.string(), z.number().int().min(1).max(64)).default({ analog: 1, digital: 1 }),
    streams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), streamSchema).default({}),
  }).prefault({}),
  /** Digital fallback of accelerator failures (runtime/scheduler/fallback-model.ts, supervisor.ts). */
  fallback: z.strictObject({
    runTimeoutMs: z.number().positive().default(2000),
    healthIntervalMs: z.number().min(0).default(1000),
    healthTimeoutMs: z.number().positive().default(1000),
    probeInitialMs: z.number().positive().default(100),
    probeMaxMs: z.number().positive().default(10_000),
  }).prefault({}),
  /** Remote accelerator process (drivers/remote): used instead of the in-process emulator when socket is set. */
  remote: z.strictObject({
    socket: z.string().min(1).optional(),
    timeoutMs: z.number().positive().default(2000),
  }).prefault({}),
  /** Accuracy guard (runtime/guard): canary set vs the digital reference. */
  guard: z.strictObject({
    enabled: z.boolean().default(false),
    canary: z.string().min(1).default('models/data/canary-64.bin'),
    intervalMs: z.number().positive().default(60_000),
    /**
     * Top-1 agreement with digital on the canary: escalate below `low`, a step succeeds at ≥ `high`
     * (hysteresis). Defaults from the bundled models on the pcm profile: fresh devices agree on
     * 94–100 % of the 64 canaries, 10 years of uncompensated drift drops that to 75–80 %.
     */
    agreementLow: z.number().min(0).max(1).default(0.85),
    agreementHigh: z.number().min(0).max(1).default(0.9),
    /** Mean cosine similarity of the outputs with digital (fresh ≈ 0.995–0.999), same hysteresis. */
    cosineLow: z.number().min(-1).max(1).default(0.95),
    cosineHigh: z.number().min(-1).max(1).default(0.97),
  }).prefault({}),
  /** MQTT reporting (runtime/telemetry/reporter.ts, drivers/mqtt/mqtt-client.ts). */
  mqtt: z.strictObject({
    /** Broker URL (mqtt://, mqtts://, ws://, wss://); absent = the embedded broker. */
    url: z.string().regex(/^(mqtts?|wss?):\/\/./, 'an mqtt://, mqtts://, ws:// or wss:// URL').optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** PEM file paths: CA bundle, client certificate and its key. */
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** 5 = MQTT 5, 4 = MQTT 3.1.1 (the embedded Aedes broker speaks 4). */
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
    /** Root of every edgerun topic. */
    prefix: z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'topic levels of letters, digits, "_", "." and "-"').default('edgerun'),
    encoding: z.enum(['json', 'cbor']).default('json'),
    telemetryIntervalMs: z.number().positive().default(10_000),
    /** QoS 1 publishes in flight at once (bounded further by the broker's Receive Maximum). */
    window: z.number().int().min(1).max(65_535).default(256),
    /** Device state (relative to the working directory): the daemon keeps its outbox and progress here. */
    stateDir: z.string().min(1).default('state'),
    outbox: z.strictObject({
      /** Unset: `outbox` in the device's state dir (mqtt.stateDir, or serve/detect --state-dir). */
      dir: z.string().min(1).optional(),
      /** Unacknowledged bytes kept at most. */
      maxBytes: z.number().int().min(4096).default(64 * 2 ** 20),
      /** At most 256 MiB: a segment is read whole when the outbox opens. */
      segmentBytes: z.number().int().min(1024).max(256 * 2 ** 20).default(4 * 2 ** 20),
      /** 'interval' = group commit every fsyncIntervalMs; 'always' = before every publish; 'never' = the OS decides. */
      fsync: z.enum(['always', 'interval', 'never']).default('interval'),
      fsyncIntervalMs: z.number().positive().default(50),
      /** Telemetry and events are dropped oldest first on overflow; results only with 'drop-oldest-results'. */
      overflow: z.enum(['drop-oldest-telemetry', 'drop-oldest-results']).default('drop-oldest-telemetry'),
    }).prefault({}),
  }).prefault({}),
  power: z.strictObject({
    /** sysfs root the power sensors are read from (containers and tests point it elsewhere). */
    root: z.string().min(1).default('/sys'),
    /** The sensor that stands for the device: "auto" (battery, else board monitor, else RAPL), "none" or a sensor id. */
    sensor: z.string().min(1).default('auto'),
    /** Board power with no inference, W: the governor's starting guess, corrected by the sensor. */
    idleWatts: z.number().min(0).default(0),
    governor: governorPolicySchema.prefault({}),
  }).prefault({}),
  /** Model deployments (runtime/deploy): installed versions live in <state dir>/deploy. */
  deploy: z.strictObject({
    /** Versions kept per model, the active one included (rollback goes to the newest other). */
    keep: z.number().int().min(1).max(100).default(3),
    /** Largest bundle accepted, MiB (its model also obeys model.maxSizeMiB). */
    maxBundleMiB: z.number().positive().max(4096).default(600),
    /** A transfer with no new bytes for this long is abandoned (truncated). */
    transferTimeoutMs: z.number().int().min(100).default(120_000),
  }).prefault({}),
  /** `edgerun detect`: camera source, detector, post-processing, what is published (runtime/pipeline/detection-stream.ts). */
  detect: z.strictObject({
    /** Camera name: in events, topics' labels and Home Assistant entity names. */
    camera: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').default('camera'),
    /** "synthetic", a video file, an rtsp:// or http(s):// URL, a V4L2 device (/dev/video0), or dir:<path> of PNG/JPEG files. */
    source: z.string().min(1).default('synthetic'),
    /** Frames per second taken from the source. */
    fps: z.number().positive().max(240).default(5),
    /** No frame for this long: a `source-stalled` event (and ffmpeg is restarted). */
    stallMs: z.number().int().min(100).default(5000),
    /** Detector ONNX file with a grid head (default: the bundled models/detector.onnx). */
    model: z.string().min(1).optional(),
    /** Detections below this score are discarded (Frigate's min_score default; below it the bundled detector's label guesses on partly visible objects open wrong-label tracks). */
    scoreThreshold: z.number().min(0).max(1).default(0.5),
    /** Class-wise NMS: boxes of one label overlapping more than this are one object. */
    nmsIou: z.number().min(0).max(1).default(0.45),
    tracker: z.strictObject({
      iouThreshold: z.number().min(0).max(1).default(0.3),
      timeoutMs: z.number().int().min(0).default(1500),
      minHits: z.number().int().min(1).default(2),
      moveIou: z.number().min(0).max(1).default(0.9),
    }).prefault({}),
    /** Per-frame `detections` messages at most this often (ms); 0 = none. */
    detectionsIntervalMs: z.number().int().min(0).default(0),
    /** JPEG of a track's best frame on <root>/snapshot/<label>. */
    snapshots: z.boolean().default(true),
    /** Named polygons in frame pixels: [[x, y], ...] (at least 3 points). */
    zones: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.array(z.tuple([z.number(), z.number()])).min(3)).default({}),
    /** Home Assistant MQTT discovery of the camera's per-label counts and the device status. */
    homeAssistant: z.strictObject({
      enabled: z.boolean().default(false),
      discoveryPrefix: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('homeassistant'),
    }).prefault({}),
  }).prefault({}),
  /** Keys, signing and signed commands (runtime/telemetry/keys.ts, commands.ts). */
  security: z.strictObject({
    /**
     * Directory of this device's key pair, the trust store and the command replay state (files
     * 0600); absent = `keys` in the state dir (`serve --state-dir`, else mqtt.stateDir).
     */
    keyDir: z.string().min(1).optional(),
    /** Key file (in keyDir) of this device's signing key. */
    keyFile: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('device.key'),
    /** Sign outgoing messages with the device key. */
    sign: z.boolean().default(false),
    /** Trust store (in keyDir): public keys allowed to sign commands. */
    trustedKeysFile: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('trusted-keys.json'),
    /** Replay state (in keyDir): nonces of recently accepted commands, persisted across restarts. */
    replayFile: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('command-replay.json'),
    /** A command is accepted only if its timestamp is within ± this of the device's clock. */
    commandWindowMs: z.number().int().min(1000).max(3_600_000).default(30_000),
    /** Largest command payload accepted, bytes. */
    maxCommandBytes: z.number().int().min(256).max(1 << 20).default(16 * 1024),
  }).prefault({}),
});

export type Config = z.infer<typeof configSchema>;
type Layer = { origin: string; values: Record<string, unknown> };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: { path: string; message: string; origin: string }[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message} (from ${i.origin})`).join('\n')}`);
  }
}

export interface ConfigSources {
  /** Contents of the config file, if any, and its path for messages. */
  file?: { path: string; text: string };
  env?: Record<string, string | undefined>;
  /** Overrides from command-line flags, nested like the schema. */
  flags?: Record<string, unknown>;
}

export const ENV_PREFIX = 'EDGERUN_';

export function resolveConfig(sources: ConfigSources = {}): Config {
  const layers: Layer[] = [];
  if (sources.file) layers.push({ origin: `config file ${sources.file.path}`, values: parseFile(sources.file) });
  const env = envLayer(sources.env ?? {});
  if (env) layers.push(env);
  if (sources.flags) layers.push({ origin: 'command-line flags', values: sources.flags });
  const merged = layers.reduce<Record<string, unknown>>((acc, l) => deepMerge(acc, l.values), {});
  const result = configSchema.safeParse(merged);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((issue) => {
    const path = issue.path.map(String);
    const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const full = unknownKeys.length ? [...path, unknownKeys[0]!] : path;
    return { path: full.join('.'), message: issue.message, origin: originOf(layers, full) };
  }));
}

function parseFile(file: { path: string; text: string }): Record<string, unknown> {
  const value = strictJson(file.text, `config file ${file.path}`);
  if (!isObject(value)) throw new ConfigError([{ path: '', message: 'expected a JSON object', origin: `config file ${file.path}` }]);
  return value;
}

/** parseJson (depth and prototype keys checked), its refusals as configuration errors. */
function strictJson(text: string, origin: string): unknown {
  try {
    return parseJson(text, origin);
  } catch (e) {
    if (e instanceof JsonError && e.forbidden) {
      const { key, at } = e.forbidden;
      throw new ConfigError([{ path: at ? `${at}.${key}` : key, message: `Unrecognized key: "${key}"`, origin }]);
    }
    if (e instanceof JsonError) throw new ConfigError([{ path: '', message: e.message.slice(origin.length + 2), origin }]);
    throw e;
  }
}

/** EDGERUN_EVAL__BATCH_SIZE=64 → { eval: { batchSize: 64 } }; values parse as JSON when they can. */
function envLayer(env: Record<string, string | undefined>): Layer | undefined {
  const values: Record<string, unknown> = {};
  const names: string[] = [];
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const path = key.slice(ENV_PREFIX.length).split('__').map(camelCase);
    let value: unknown = raw;
    try { value = JSON.parse(raw); } catch { /* a plain string */ }
    if (typeof value === 'object' && value !== null) value = strictJson(raw, `environment variable ${key}`);
    setPath(values, path, value);
    names.push(key);
  }
  return names.length ? { origin: 'environment', values } : undefined;
}

function originOf(layers: Layer[], path: string[]): string {
  for (const layer of [...layers].reverse()) {
    if (getPath(layer.values, path) !== undefined) {
      return layer.origin === 'environment' ? `environment variable ${ENV_PREFIX}${path.map(snakeCase).join('__')}` : layer.origin;
    }
  }
  return 'defaults';
}

const camelCase = (s: string): string => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const snakeCase = (s: string): string => s.replace(/([A-Z])/g, '_$1').toUpperCase();
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  path.slice(0, -1).forEach((k) => {
    if (!isObject(node[k])) node[k] = {};
    node = node[k] as Record<string, unknown>;
  });
  node[path[path.length - 1]!] = value;
}

function getPath(target: Record<string, unknown>, path: string[]): unknown {
  let node: unknown = target;
  for (const k of path) {
    // Own keys only: 'constructor' is on every object, and would name the wrong layer as its origin.
    if (!isObject(node) || !Object.hasOwn(node, k)) return undefined;
    node = node[k];
  }
  return node;
}
