/**
 * The bodies of what devices publish, as the dashboard's page reads them (zod). Anyone who may
 * publish on the broker can send any body on a device's topic: every field the page shows is typed
 * here, and a field of the wrong type is left out (an entry of a record or list: that entry), so
 * a foreign or hostile publisher's body shows what is well formed and nothing else, and never
 * stops the page.
 *
 *   readBody('telemetry', { streams: { a: null, b: { depth: 2 } } })   // { streams: { b: { depth: 2 } }, models: {}, guards: {} }
 */
import { z } from 'zod';

const opt = <T extends z.ZodType>(t: T) => t.optional().catch(undefined);
const num = opt(z.number());
const str = opt(z.string());
const bool = opt(z.boolean());
/** Ids and labels: other publishers may send numbers. */
const text = opt(z.union([z.string(), z.number().transform(String)]));
const part = <S extends z.ZodRawShape>(shape: S) => opt(z.object(shape));

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A record of `value`s: entries of another shape are left out (Object.fromEntries: "__proto__" stays an ordinary key). */
const recordOf = <T extends z.ZodType>(value: T) => z.unknown().optional().transform((v) => Object.fromEntries(
  Object.entries(isRecord(v) ? v : {}).flatMap(([k, x]) => { const p = value.safeParse(x); return p.success ? [[k, p.data as z.output<T>]] : []; })));
/** A list of `item`s, optional: items of another shape are left out. */
const listOf = <T extends z.ZodType>(item: T) => z.unknown().optional().transform((v) => (Array.isArray(v)
  ? v.flatMap((x) => { const p = item.safeParse(x); return p.success ? [p.data as z.output<T>] : []; }) : undefined));

const box = opt(z.tuple([z.number(), z.number(), z.number(), z.number()]));
const latency = part({ p50Ms: num, p90Ms: num, p99Ms: num });

const status = z.object({
  state: str, reason: str, runtime: str, profile: str, pid: num,
  models: listOf(z.string()), modelVersions: recordOf(z.string()),
});

const telemetry = z.object({
  uptimeS: num, deviceAgeS: num, queueDepth: num, completed: num, dropped: num, expired: num, failed: num, fallbacks: num,
  streams: recordOf(z.object({
    depth: num, capacity: num, completed: num, dropped: num, expired: num, paused: bool, waitMs: latency, serviceMs: latency,
  })),
  models: recordOf(z.object({ backend: str, policy: str, accelerator: part({ state: str }), fallbacks: recordOf(z.number()) })),
  guards: recordOf(z.object({ state: str, last: part({ agreement: num }) })),
  power: part({
    modelledW: num, measuredW: num, batteryPct: num, celsius: num, sensor: str,
    energy: part({
      inferences: num, perInferenceJ: num, totalJ: num, measuredToModelled: num,
      breakdownJ: recordOf(z.number()), byModel: recordOf(z.object({ joules: z.number(), inferences: z.number() })),
    }),
    governor: part({
      enabled: bool, reason: str, allowedW: opt(z.number().nullable()), plannedW: num, adcBits: num,
      shed: listOf(z.string()), paused: bool, decisions: num,
    }),
  }),
});

const result = z.object({ model: text, backend: str, fallbackReason: str, correct: bool });

const detection = z.object({ label: text, score: num, box });
const detections = z.object({ camera: text, width: num, height: num, detections: listOf(detection), objects: listOf(detection) });

/** A tracked object (Frigate's shape) or a guard's figures; the event's other fields stay as they came (the log shows them as text). */
const side = opt(z.looseObject({ id: text, label: text, camera: text, score: num, top_score: num, box, agreement: num }));
const event = z.looseObject({ type: text, before: side, after: side, nonce: str, ok: bool });

/** The retained last step of a deployment (runtime/deploy/installer.ts DeployStatus). */
const deployStatus = z.object({
  id: text, state: str, model: text, version: text, from: opt(z.string().nullable()), reason: str, detail: str,
  transfer: part({ received: num, size: num }), selfTest: part({ agreement: num, minAgreement: num, servedBy: str }),
});

const SCHEMAS = { status, telemetry, results: result, detections, events: event, 'deploy/status': deployStatus } as const;
export type BodyKind = keyof typeof SCHEMAS;
export type Body<K extends BodyKind> = z.output<(typeof SCHEMAS)[K]>;

/** `body` of a `kind` message with every field of the wrong type left out (a body that is not an object reads as {}). */
export function readBody<K extends BodyKind>(kind: K, body: unknown): Body<K> {
  return SCHEMAS[kind].parse(isRecord(body) ? body : {}) as Body<K>;
}
