/**
 * MQTT reporting throughput against one local Mosquitto, side by side in this run: QoS 1 results/s
 * through the Reporter with its durable outbox (fsync 'interval') vs a bare mqtt.js QoS 1 publish
 * loop with the same window, ~200-byte results. Then signing on vs off, and CBOR vs JSON (bytes per
 * message and rate). Rounds alternate between the variants; figures are medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient as MqttJs } from 'mqtt';
import nacl from 'tweetnacl';
import { FsStorage } from '../drivers/storage/fs-storage.js';
import { MqttClient } from '../drivers/mqtt/mqtt-client.js';
import { nativeSigner } from '../drivers/crypto/ed25519.js';
import { encodeMessage, type Encoding, type SigningKey } from '../runtime/telemetry/envelope.js';
import { Reporter } from '../runtime/telemetry/reporter.js';
import { fmt, median, report } from './measure.js';

const WINDOW = 256;
/** Results the producer keeps unacknowledged at most (the bare loop: WINDOW). */
const OUTSTANDING = Number(process.env.MQTT_BENCH_OUTSTANDING ?? 4 * WINDOW);
const PER_ROUND = 5000;
const ROUNDS = Number(process.env.MQTT_BENCH_ROUNDS ?? 5);

/** A detection result as the device publishes it (~200 bytes as a JSON envelope). */
const body = (n: number) => ({
  n, stream: 'cam0', model: 'mlp', sample: n % 2000, class: n % 10, className: 'Ankle boot', score: 0.9731,
  label: n % 10, correct: true, backend: 'analog', latencyMs: 1.234, energyJ: 0.000123,
});

/**
 * The bare mqtt.js loop: what an application does without edgerun — serialise each result (the same
 * message fields, JSON) and publish it QoS 1, `WINDOW` in flight. With `payload` set it skips the
 * serialisation and sends those bytes every time (the transport's ceiling).
 */
async function bareRound(client: MqttJs, topic: string, n: number, payload?: Buffer): Promise<number> {
  const t0 = performance.now();
  const ts = Date.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let done = 0;
    let inflight = 0;
    const onAck = (err?: Error): void => {
      if (err) { reject(err); return; }
      inflight--;
      if (++done === n) resolve();
      else next();
    };
    const next = (): void => {
      while (inflight < WINDOW && sent < n) {
        inflight++;
        const bytes = payload ?? JSON.stringify({ device: 'bare', seq: sent, ts, kind: 'results', body: body(sent) });
        sent++;
        client.publish(topic, bytes, { qos: 1 }, onAck);
      }
    };
    next();
  });
  return (n / (performance.now() - t0)) * 1000;
}

/** Through the reporter, the producer keeping at most 2×WINDOW results unacknowledged (as the bare loop keeps WINDOW). */
async function reporterRound(reporter: Reporter, n: number): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let issued = 0;
    let done = 0;
    const onDelivered = (): void => {
      if (++done === n) resolve();
      else issue();
    };
    const issue = (): void => {
      while (issued - done < OUTSTANDING && issued < n) {
        reporter.publish('results', body(issued++)).then((h) => h.delivered).then(onDelivered, reject);
      }
    };
    issue();
  });
  return (n / (performance.now() - t0)) * 1000;
}

interface Variant { name: string; encoding: Encoding; signer?: SigningKey }

async function openReporter(url: string, v: Variant, dirs: string[], id: string): Promise<{ reporter: Reporter; storage: FsStorage }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-bench-outbox-'));
  dirs.push(dir);
  const storage = new FsStorage(dir);
  const client = new MqttClient({ url, clientId: `bench-${id}-${process.pid}`, protocolVersion: 5 });
  const reporter = await Reporter.open({
    mqtt: client, storage, address: { prefix: 'edgerun', fleet: 'bench', device: id },
    encoding: v.encoding, ...(v.signer ? { signer: v.signer } : {}), window: WINDOW,
    config: { outbox: { fsync: 'interval', fsyncIntervalMs: 50 } },
  });
  const t0 = Date.now();
  while (!client.connected) {
    if (Date.now() - t0 > 10_000) throw new Error('reporter did not connect');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { reporter, storage };
}

export async function main(): Promise<void> {
  console.log(`\n# mqtt: QoS 1 results through Reporter + durable outbox (fsync interval) vs bare mqtt.js, local Mosquitto, window ${WINDOW}, ${ROUNDS}×${PER_ROUND} per variant`);
  // The test helper spawns Mosquitto on a free port with a generated config.
  const { Mosquitto, mosquittoBinary } = await import('../test/helpers/mosquitto.js');
  if (!mosquittoBinary) {
    console.log('mqtt bench skipped: mosquitto not installed (apt-get install mosquitto)');
    return;
  }
  // Receive Maximum large enough for the window (mosquitto's default of 20 would cap both sides).
  const broker = await Mosquitto.start({ persistence: false, config: ['max_inflight_messages 0', 'max_queued_messages 0'] });
  const dirs: string[] = [];
  const bare = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `bench-bare-${process.pid}`, reconnectPeriod: 0 });
  const variants: Variant[] = [
    { name: 'json', encoding: 'json' },
    { name: 'json signed', encoding: 'json', signer: nativeSigner(nacl.sign.keyPair()) },
    { name: 'cbor', encoding: 'cbor' },
    { name: 'cbor signed', encoding: 'cbor', signer: nativeSigner(nacl.sign.keyPair()) },
  ];
  const reporters = [];
  try {
    for (const v of variants) reporters.push({ v, ...(await openReporter(broker.url, v, dirs, v.name.replace(' ', '-'))) });
    const bareBytes = Buffer.from(encodeMessage({ device: 'json', seq: 123456, ts: Date.now(), kind: 'results', body: body(123456) }));
    const rates = new Map<string, number[]>([['bare', []], ['bare-raw', []], ...variants.map((v) => [v.name, []] as [string, number[]])]);
    const ratios: number[] = [];
    const rawRatios: number[] = [];
    // Warm-up: JIT, connections, the first segment files.
    await bareRound(bare, 'bench/bare', 2000);
    await bareRound(bare, 'bench/bare', 2000, bareBytes);
    for (const r of reporters) await reporterRound(r.reporter, 2000);
    for (let round = 0; round < ROUNDS; round++) {
      const names = ['bare', 'bare-raw', ...variants.map((v) => v.name)];
      const order = round % 2 === 0 ? names : [...names].reverse();
      const got = new Map<string, number>();
      for (const name of order) {
        const r = reporters.find((x) => x.v.name === name);
        const rate = !r ? await bareRound(bare, 'bench/bare', PER_ROUND, name === 'bare-raw' ? bareBytes : undefined) : await reporterRound(r.reporter, PER_ROUND);
        got.set(name, rate);
        rates.get(name)!.push(rate);
      }
      ratios.push(got.get('json')! / got.get('bare')!);
      rawRatios.push(got.get('json')! / got.get('bare-raw')!);
    }
    const m = (name: string) => median(rates.get(name)!);
    report('bare mqtt.js QoS 1 loop (JSON.stringify + publish), msg/s', fmt(m('bare'), 0));
    report('bare mqtt.js QoS 1 loop, pre-encoded bytes, msg/s', fmt(m('bare-raw'), 0));
    report('Reporter + outbox (json), msg/s', fmt(m('json'), 0), { text: '≥ 20000', met: m('json') >= 20_000 });
    report('Reporter + outbox / bare mqtt.js (JSON)', `${fmt(median(ratios))}×`, { text: '≥ 0.80×', met: median(ratios) >= 0.8 });
    report('Reporter + outbox / bare mqtt.js (pre-encoded)', `${fmt(median(rawRatios))}×`);
    report('bare payload bytes/msg', String(bareBytes.length));
    for (const v of variants) {
      const bytes = encodeMessage({ device: v.name.replace(' ', '-'), seq: 123456, ts: Date.now(), kind: 'results', body: body(123456) }, { encoding: v.encoding, ...(v.signer ? { signer: v.signer } : {}) }).length;
      report(`${v.name}: msg/s | bytes/msg`, `${fmt(m(v.name), 0)} | ${bytes}`);
    }
    report('signing (node:crypto ed25519): json signed / json rate', `${fmt(m('json signed') / m('json'))}×`);
    // The envelope's fallback signer (tweetnacl, pure JS), for comparison: a few signatures only.
    const k = nacl.sign.keyPair();
    const sample = bareBytes;
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) nacl.sign.detached(sample, k.secretKey);
    const naclUs = ((performance.now() - t0) * 1000) / 20;
    const fast = nativeSigner(k);
    const t1 = performance.now();
    for (let i = 0; i < 500; i++) fast.sign!(sample);
    const nativeUs = ((performance.now() - t1) * 1000) / 500;
    report('ed25519 µs/signature: tweetnacl | node:crypto', `${fmt(naclUs, 0)} | ${fmt(nativeUs, 0)}`);
    report('cbor / json rate', `${fmt(m('cbor') / m('json'))}×`);
    const oc = reporters[0]!.reporter.outboxCounters;
    report('outbox (json): messages / journal writes / fsyncs', `${oc.appended} / ${oc.writes} / ${oc.syncs}`);
  } finally {
    for (const r of reporters) { await r.reporter.close(); await r.storage.close(); }
    await bare.endAsync();
    await broker.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

// `node bin/run-ts.js bench/mqtt.ts` runs it alone.
if (process.argv[1]?.endsWith('mqtt.ts')) await main();
