/**
 * The MQTT topic contract, in one place (../shared/DESIGN.md "MQTT contract"):
 *
 *   <prefix>/<fleet>/<device>/status        retained birth message; last will "offline"
 *   <prefix>/<fleet>/<device>/results       inference results, QoS 1, through the durable outbox
 *   <prefix>/<fleet>/<device>/detections    detections (detect-stream), QoS 1, through the outbox
 *   <prefix>/<fleet>/<device>/telemetry     periodic snapshot (power, energy, queues, latency, guard)
 *   <prefix>/<fleet>/<device>/events        fallbacks, guard steps, governor decisions, rejected commands,
 *                                           and detection tracks in Frigate's shape {type: new|update|end, before, after}
 *   <prefix>/<fleet>/<device>/snapshot/<label>  JPEG of the best frame of the latest track of a label (raw bytes, retained)
 *   <prefix>/<fleet>/<device>/count/<label>     objects of a label in view now (plain integer, retained)
 *   <prefix>/<fleet>/<device>/cmd/<name>    signed commands in
 *   <prefix>/<fleet>/<device>/deploy/status retained: the last deployment step or outcome (runtime/deploy)
 *   <prefix>/<fleet>/<device>/deploy/chunk/<deployment>   bundle chunks in, QoS 1 (runtime/deploy/transfer.ts)
 *   <discovery>/sensor/<node>/<object>/config   Home Assistant MQTT discovery (retained), with `edgerun detect --ha-discovery`
 *
 * Every outgoing payload is an envelope (runtime/telemetry/envelope.ts) with the device id, a
 * session id, a sequence number monotonic within it and a timestamp, so consumers dedupe on
 * (device, session, seq) (envelope.ts).
 */

export const OUTGOING_KINDS = ['status', 'results', 'detections', 'telemetry', 'events', 'deploy/status'] as const;
export type OutgoingKind = (typeof OUTGOING_KINDS)[number];

/** How each kind is published. Results/detections must not be lost; telemetry ages out. */
export interface KindPolicy {
  qos: 0 | 1;
  retain: boolean;
  /** Goes through the durable outbox (stored before publish, removed on PUBACK). */
  durable: boolean;
  /** MQTT 5 message expiry (s): a broker drops it for sessions that were away longer. */
  expirySeconds?: number;
}

export const KIND_POLICY: Readonly<Record<OutgoingKind, KindPolicy>> = {
  status: { qos: 1, retain: true, durable: false },
  results: { qos: 1, retain: false, durable: true },
  detections: { qos: 1, retain: false, durable: true },
  telemetry: { qos: 1, retain: false, durable: true, expirySeconds: 3600 },
  events: { qos: 1, retain: false, durable: true },
  // Retained, so a pusher or a dashboard that connects later sees where each device stands.
  'deploy/status': { qos: 1, retain: true, durable: true },
};

/** Topic level names: no wildcards, separators or leading `$`. */
const LEVEL = /^[A-Za-z0-9_.-]+$/;

export interface DeviceAddress {
  /** Root of every edgerun topic, e.g. "edgerun" (may itself contain "/"). */
  prefix: string;
  fleet: string;
  device: string;
}

function checkLevel(what: string, value: string): string {
  if (!LEVEL.test(value)) throw new Error(`invalid ${what} "${value}" for an MQTT topic: letters, digits, "_", "." and "-" only`);
  return value;
}

function checkPrefix(prefix: string): string {
  for (const level of prefix.split('/')) checkLevel('topic prefix level', level);
  return prefix;
}

export function deviceRoot(a: DeviceAddress): string {
  return `${checkPrefix(a.prefix)}/${checkLevel('fleet', a.fleet)}/${checkLevel('device id', a.device)}`;
}

export function deviceTopic(a: DeviceAddress, kind: OutgoingKind): string {
  return `${deviceRoot(a)}/${kind}`;
}

/** JPEG snapshots are raw bytes (as Frigate publishes them), not envelopes. */
export function snapshotTopic(a: DeviceAddress, label: string): string {
  return `${deviceRoot(a)}/snapshot/${checkLevel('label', label)}`;
}

/** Per-label object counts are plain integers, so any MQTT consumer (Home Assistant) reads them as they are. */
export function countTopic(a: DeviceAddress, label: string): string {
  return `${deviceRoot(a)}/count/${checkLevel('label', label)}`;
}

/** Home Assistant MQTT discovery: `<discovery prefix>/<component>/<node id>/<object id>/config`. */
export function homeAssistantConfigTopic(discoveryPrefix: string, component: 'sensor' | 'binary_sensor', node: string, object: string): string {
  return `${checkLevel('discovery prefix', discoveryPrefix)}/${component}/${checkLevel('node id', node)}/${checkLevel('object id', object)}/config`;
}

export function commandTopic(a: DeviceAddress, name: string): string {
  return `${deviceRoot(a)}/cmd/${checkLevel('command name', name)}`;
}

/** Where the chunks of a deployment's bundle go to a device. */
export function deployChunkTopic(a: DeviceAddress, deployment: string): string {
  return `${deviceRoot(a)}/deploy/chunk/${checkLevel('deployment id', deployment)}`;
}

/** What a device subscribes to for its commands. */
export function commandFilter(a: DeviceAddress): string {
  return `${deviceRoot(a)}/cmd/+`;
}

/**
 * What a consumer subscribes to: one kind (or all, `#`-style via '+') of every device of a fleet
 * ('+' = every fleet). With `group`, an MQTT 5 shared subscription: the broker splits the messages
 * among the group's subscribers.
 */
export function fleetFilter(prefix: string, fleet: string, kinds: OutgoingKind | '+', group?: string): string {
  const f = `${checkPrefix(prefix)}/${fleet === '+' ? '+' : checkLevel('fleet', fleet)}/+/${kinds}`;
  return group === undefined ? f : `$share/${checkLevel('share group', group)}/${f}`;
}

export interface ParsedTopic {
  fleet: string;
  device: string;
  kind: OutgoingKind | 'cmd';
  /** Set for kind 'cmd'. */
  command?: string;
}

/** Splits a topic under `prefix`; undefined for topics that are not edgerun's. */
export function parseTopic(prefix: string, topic: string): ParsedTopic | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const rest = topic.slice(prefix.length + 1).split('/');
  const [fleet, device, kind, command] = rest;
  if (fleet === undefined || device === undefined || kind === undefined) return undefined;
  if (!LEVEL.test(fleet) || !LEVEL.test(device)) return undefined;
  if (kind === 'cmd') return rest.length === 4 && command !== undefined && LEVEL.test(command) ? { fleet, device, kind, command } : undefined;
  const k = rest.slice(2).join('/');
  if (!(OUTGOING_KINDS as readonly string[]).includes(k)) return undefined;
  return { fleet, device, kind: k as OutgoingKind };
}
