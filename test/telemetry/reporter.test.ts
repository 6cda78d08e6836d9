/**
 * The reporter against real brokers: a Mosquitto process (MQTT 5 and 3.1.1) and an in-process Aedes
 * (3.1.1), real files for the outbox, real sockets dropped and brokers restarted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient as MqttJs } from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { decodeMessage, type Encoding, type Message } from '../../runtime/telemetry/envelope.js';
import { Reporter, type ReporterOptions } from '../../runtime/telemetry/reporter.js';
import type { MqttPort } from '../../runtime/telemetry/mqtt-port.js';
import { deviceTopic, type DeviceAddress } from '../../runtime/telemetry/topics.js';
import { Mosquitto, describeMosquitto, startAedes, type AedesHandle } from '../helpers/mosquitto.js';
import { RabbitMq, describeRabbitMq } from '../helpers/rabbitmq.js';
import { repoRoot } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let ids = 0;
function address(): DeviceAddress {
  return { prefix: 'edgerun', fleet: 'test', device: `dev-${process.pid}-${++ids}` };
}

function tempStorage(): { storage: FsStorage; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-reporter-'));
  const storage = new FsStorage(dir);
  cleanups.push(async () => { await storage.close(); rmSync(dir, { recursive: true, force: true }); });
  return { storage, dir };
}

interface Received { topic: string; message: Message; retain: boolean; contentType?: string; userProperties?: Record<string, unknown>; encoding: Encoding; signedBy?: Uint8Array }

/** A consumer with a persistent session (clean: false) that reconnects on its own. */
async function subscriber(url: string, protocolVersion: 4 | 5, filter: string) {
  const got: Received[] = [];
  const client: MqttJs = await mqtt.connectAsync(url, {
    protocolVersion, clean: false, clientId: `sub-${process.pid}-${++ids}`, reconnectPeriod: 100,
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}),
  });
  client.on('message', (topic, payload, packet) => {
    const d = decodeMessage(new Uint8Array(payload));
    got.push({
      topic, message: d.message, retain: packet.retain, encoding: d.encoding, ...(d.signedBy ? { signedBy: d.signedBy } : {}),
      ...(packet.properties?.contentType ? { contentType: packet.properties.contentType } : {}),
      ...(packet.properties?.userProperties ? { userProperties: packet.properties.userProperties } : {}),
    });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  cleanups.push(() => client.endAsync(true));
  const seqsOf = (kind: string) => got.filter((g) => g.message.kind === kind).map((g) => g.message.seq);
  return { client, got, seqsOf };
}

async function openReporter(url: string, protocolVersion: 4 | 5, addr: DeviceAddress, storage: FsStorage, extra: Partial<ReporterOptions> = {}) {
  const client = new MqttClient({ url, clientId: `edgerun-${addr.device}`, protocolVersion, reconnect: { initialMs: 50, maxMs: 400 } });
  const reporter = await Reporter.open({ mqtt: client, address: addr, storage, birth: { runtime: '0.1.0-test', model: 'mlp', backend: 'analog', profile: 'pcm' }, ...extra });
  cleanups.push(() => reporter.close({ force: true }));
  return reporter;
}

const unique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

interface BrokerCase {
  name: string;
  protocolVersion: 4 | 5;
  start: () => Promise<{ url: string; stop: () => Promise<void>; restart: () => Promise<void>; close: () => Promise<void> }>;
  /** The broker keeps every message it acknowledged across stop()/restart() (else: only the device's duty is checked). */
  keepsAcknowledged: boolean;
}

const mosquittoCase = (protocolVersion: 4 | 5): BrokerCase => ({
  name: `Mosquitto (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`,
  protocolVersion,
  // With persistence (its DB is saved on SIGTERM) Mosquitto keeps what it acknowledged across the restart.
  keepsAcknowledged: true,
  start: async () => {
    const m = await Mosquitto.start();
    return { url: m.url, stop: () => m.stop(), restart: () => m.restart(), close: () => m.dispose() };
  },
});
const aedesCase: BrokerCase = {
  name: 'Aedes (MQTT 3.1.1)',
  protocolVersion: 4,
  keepsAcknowledged: true,
  start: async () => {
    const a: AedesHandle = await startAedes();
    return { url: a.url, stop: () => a.crash(), restart: () => a.restart(), close: () => a.close() };
  },
};

const rabbitCase: BrokerCase = {
  name: 'RabbitMQ MQTT plugin (MQTT 3.1.1)',
  protocolVersion: 4,
  // A clean stop keeps durable session queues and their persistent (QoS 1) messages.
  keepsAcknowledged: true,
  start: async () => {
    const r = await RabbitMq.start();
    return { url: r.url, stop: () => r.stop(), restart: () => r.restart(), close: () => r.dispose() };
  },
};

function brokerSuite(bc: BrokerCase): void {
  describe(bc.name, () => {
    let broker: Awaited<ReturnType<BrokerCase['start']>>;
    beforeAll(async () => { broker = await bc.start(); });
    afterAll(async () => { await broker?.close(); });
    const v = bc.protocolVersion;

    it('delivers QoS 1 results in order, acknowledged, with a retained birth and MQTT 5 properties', async () => {
      const addr = address();
      const sub = await subscriber(broker.url, v, `edgerun/test/${addr.device}/+`);
      const { storage } = tempStorage();
      // The real client, seen through a port that counts the publishes awaiting their PUBACK.
      const real = new MqttClient({ url: broker.url, clientId: `edgerun-${addr.device}`, protocolVersion: v });
      let inflight = 0;
      let maxInflight = 0;
      const counting: MqttPort = {
        get connected() { return real.connected; },
        protocolVersion: real.protocolVersion,
        connect: () => real.connect(),
        setWill: (w) => real.setWill(w),
        publish: async (topic, payload, opts) => {
          maxInflight = Math.max(maxInflight, ++inflight);
          try { await real.publish(topic, payload, opts); } finally { inflight--; }
        },
        subscribe: (f, q) => real.subscribe(f, q),
        unsubscribe: (f) => real.unsubscribe(f),
        onMessage: (h) => real.onMessage(h),
        onConnect: (h) => real.onConnect(h),
        onClose: (h) => real.onClose(h),
        end: (o) => real.end(o),
      };
      const reporter = await Reporter.open({ mqtt: counting, address: addr, storage, window: 8, birth: { runtime: '0.1.0-test', model: 'mlp', backend: 'analog', profile: 'pcm' } });
      cleanups.push(() => reporter.close({ force: true }));
      const handles = await Promise.all(range(0, 200).map((i) => reporter.publish('results', { n: i, cls: i % 10 })));
      await Promise.all(handles.map((h) => h.delivered));
      // The window bounds QoS 1 publishes in flight (the birth may be one more).
      expect(maxInflight).toBeLessThanOrEqual(8 + 1);
      expect(maxInflight).toBeGreaterThan(1);
      await until('200 results', () => sub.seqsOf('results').length >= 200);
      const results = sub.got.filter((g) => g.message.kind === 'results');
      expect(results.map((r) => (r.message.body as { n: number }).n)).toEqual(range(0, 200));
      // seq strictly increasing, one counter for the device
      const seqs = results.map((r) => r.message.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(200);
      expect(results[0]!.topic).toBe(deviceTopic(addr, 'results'));
      if (v === 5) {
        expect(results[0]!.contentType).toBe('application/json');
        expect(results[0]!.userProperties).toBeUndefined();
      }
      expect(reporter.counters).toMatchObject({ published: 200, acked: 200, pending: 0 });

      // A consumer that comes later finds the retained birth.
      const late = await subscriber(broker.url, v, deviceTopic(addr, 'status'));
      await until('retained birth', () => late.got.length > 0);
      expect(late.got[0]).toMatchObject({ retain: true, message: { kind: 'status', body: { state: 'online', model: 'mlp', backend: 'analog', profile: 'pcm', runtime: '0.1.0-test' } } });
    });

    it('publishes the will (retained "offline") when the connection drops, and a clean "offline" on close', async () => {
      const addr = address();
      const sub = await subscriber(broker.url, v, deviceTopic(addr, 'status'));
      const statuses = () => sub.got.map((g) => (g.message.body as { state: string; reason?: string }));
      const { storage } = tempStorage();
      const r1 = await openReporter(broker.url, v, addr, storage);
      await until('birth', () => statuses().some((s) => s.state === 'online'));
      await r1.close({ force: true });
      await until('will', () => statuses().some((s) => s.state === 'offline'));
      expect(statuses().at(-1)).toEqual({ state: 'offline', reason: 'connection lost' });

      const r2 = await openReporter(broker.url, v, addr, storage);
      await until('second birth', () => statuses().filter((s) => s.state === 'online').length === 2);
      await r2.close();
      await until('clean offline', () => statuses().at(-1)?.reason === 'shutdown');
      expect(statuses().at(-1)).toEqual({ state: 'offline', reason: 'shutdown' });
      // Every status has its own seq; each birth names the seq of the will registered with it.
      const seqs = sub.got.map((g) => g.message.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      const births = sub.got.filter((g) => (g.message.body as { state: string }).state === 'online');
      const will = sub.got.find((g) => (g.message.body as { reason?: string }).reason === 'connection lost')!;
      expect((births[0]!.message.body as { willSeq: number }).willSeq).toBe(will.message.seq);
      // The will comes after the birth it ends, by seq and by ts (it carries its CONNECT's time, as the
      // birth does), and before the next connection's birth.
      expect(will.message.seq).toBe(births[0]!.message.seq + 1);
      expect(will.message.ts).toBeGreaterThanOrEqual(births[0]!.message.ts);
      expect(births[1]!.message.seq).toBeGreaterThan(will.message.seq);
      expect(births[1]!.message.ts).toBeGreaterThanOrEqual(will.message.ts);
      // Each run of the reporter is a session of its own, named in every message and in the birth.
      expect(births[0]!.message.session).toBe(will.message.session);
      expect(births[1]!.message.session).not.toBe(births[0]!.message.session);
      expect((births[1]!.message.body as { session: string }).session).toBe(births[1]!.message.session);
    });

    it('loses nothing when the broker restarts mid-stream: every seq arrives, resends counted', async () => {
      const addr = address();
      const sub = await subscriber(broker.url, v, deviceTopic(addr, 'results'));
      const { storage } = tempStorage();
      const reporter = await openReporter(broker.url, v, addr, storage, { window: 64 });
      const N = 1500;
      const all: Promise<{ seq: number }>[] = [];
      const ackedByOldBroker = new Set<number>();
      let brokerGone = false;
      for (let i = 0; i < N; i++) {
        const p = reporter.publish('results', { n: i });
        all.push(p);
        void p.then((h) => h.delivered.then(() => { if (!brokerGone) ackedByOldBroker.add(h.seq); }));
        if (i === 500) {
          await until('some acknowledged', () => reporter.counters.acked > 100);
          // The consumer steps away (its session stays), so the broker queues for it.
          await sub.client.endAsync();
          await broker.stop();
          brokerGone = true;
          await broker.restart();
          sub.client.reconnect();
        }
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      const seqs = (await Promise.all(all)).map((p) => p.seq);
      await reporter.drain(30_000);
      const c = reporter.counters;
      expect(c).toMatchObject({ acked: N, pending: 0 });
      expect(c.connects).toBeGreaterThanOrEqual(2);
      // The device's duty: everything the old broker had not acknowledged reaches the consumer.
      const mustArrive = seqs.filter((s) => bc.keepsAcknowledged || !ackedByOldBroker.has(s));
      const arrived = () => new Set(sub.seqsOf('results'));
      await until('every seq at the consumer', () => { const a = arrived(); return mustArrive.every((s) => a.has(s)); }, 30_000).catch((e: Error) => {
        const a = arrived();
        const missing = mustArrive.filter((s) => !a.has(s));
        throw new Error(`${e.message}: ${missing.length} missing, e.g. ${missing.slice(0, 10).join(',')}; counters ${JSON.stringify(c)}`);
      });
      const a = arrived();
      const lostByBroker = seqs.filter((s) => !a.has(s)).length;
      // Duplicates at the consumer are allowed (at-least-once): the device's resends, the broker's redeliveries.
      const duplicates = sub.seqsOf('results').length - a.size;
      console.log(`${bc.name}: broker restarted mid-stream: ${N} results, ${c.resent} resent by the device, ${duplicates} duplicates and ${lostByBroker} lost by the broker after it acknowledged them (of ${ackedByOldBroker.size} acknowledged before the restart)`);
    });

    it('replays what was not acknowledged after a restart of the device, without reusing a seq', async () => {
      const addr = address();
      const { storage } = tempStorage();
      // Offline: nothing can be acknowledged.
      const offline = await openReporter('mqtt://127.0.0.1:1', v, addr, storage);
      const before = await Promise.all(range(0, 50).map((i) => offline.publish('results', { n: i })));
      await Promise.all(before.map((b) => b.stored));
      await offline.close({ force: true });

      const sub = await subscriber(broker.url, v, deviceTopic(addr, 'results'));
      const online = await openReporter(broker.url, v, addr, storage);
      expect(online.counters.recovered).toBe(50);
      const after = await online.publish('results', { n: 50 });
      expect(after.seq).toBeGreaterThan(Math.max(...before.map((b) => b.seq)));
      await online.drain(30_000);
      await until('51 results', () => unique(sub.seqsOf('results')).length >= 51);
      expect(unique(sub.seqsOf('results'))).toEqual([...before.map((b) => b.seq), after.seq]);
      expect(online.counters.resent).toBeGreaterThanOrEqual(50);
    });

    it('a SIGKILLed device process: the broker publishes its will, and a restart delivers what it had journaled', async () => {
      const addr = address();
      const sub = await subscriber(broker.url, v, `edgerun/test/${addr.device}/+`);
      const { storage, dir } = tempStorage();
      const N = 3000;
      const child = spawn(process.execPath, ['bin/run-ts.js', 'test/telemetry/fixtures/reporter-child.ts', broker.url, String(v), dir, addr.device, String(N)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      cleanups.push(() => { child.kill('SIGKILL'); });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      await until('the child journaled everything', () => out.includes(`published ${N}`), 60_000);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const statuses = () => sub.got.filter((g) => g.message.kind === 'status').map((g) => g.message.body as { state: string; reason?: string });
      await until('the will', () => statuses().some((s) => s.state === 'offline'));
      expect(statuses().at(-1)).toEqual({ state: 'offline', reason: 'connection lost' });

      // The next start of the device replays the journal: every result reaches the consumer.
      const reporter = await openReporter(broker.url, v, addr, storage);
      const journaled = reporter.counters.recovered;
      await reporter.drain(30_000);
      await until(`all ${N} results`, () => unique(sub.seqsOf('results')).length >= N, 30_000);
      const bodies = new Set(sub.got.filter((g) => g.message.kind === 'results').map((g) => (g.message.body as { n: number }).n));
      expect(bodies.size).toBe(N);
      console.log(`${bc.name}: device SIGKILLed after journaling ${N}: ${journaled} unacknowledged replayed after restart`);
    });

    it('drops telemetry that expired while offline, and reports outbox overflow as an events message', async () => {
      const addr = address();
      const { storage } = tempStorage();
      let now = Date.now();
      const clock = () => now;
      const offline = await openReporter('mqtt://127.0.0.1:1', v, addr, storage, { now: clock, config: { outbox: { maxBytes: 8192 } } });
      const old = await offline.publish('telemetry', { watts: 1 });
      const result = await offline.publish('results', { n: 1 });
      // Fill it with telemetry: the oldest telemetry goes, the result stays.
      for (let i = 0; i < 60; i++) await offline.publish('telemetry', { i, pad: 'x'.repeat(100) });
      await expect(old.delivered).rejects.toThrow(/overflow/);
      expect(offline.counters.overflowed).toBeGreaterThan(0);
      await until('the overflow report', () => offline.counters.published > 62);
      await offline.close({ force: true });

      now += 2 * 3600_000; // two hours later: the remaining telemetry is past its one-hour expiry
      const sub = await subscriber(broker.url, v, `edgerun/test/${addr.device}/+`);
      const online = await openReporter(broker.url, v, addr, storage, { now: clock });
      await online.drain(30_000);
      await until('the result and the report', () => sub.seqsOf('results').length > 0 && sub.seqsOf('events').length > 0);
      expect(sub.seqsOf('results')).toEqual([result.seq]);
      expect(sub.seqsOf('telemetry')).toEqual([]);
      expect(online.counters.expired).toBeGreaterThan(0);
      const report = sub.got.find((g) => g.message.kind === 'events')!.message.body as { type: string; dropped: number; kinds: Record<string, number> };
      expect(report).toMatchObject({ type: 'outbox-overflow' });
      expect(report.dropped).toBeGreaterThan(0);
      expect(report.kinds.telemetry).toBe(report.dropped);
    });

    it('sends CBOR, signed, and telemetry with a message expiry', async () => {
      const addr = address();
      const sub = await subscriber(broker.url, v, `edgerun/test/${addr.device}/+`);
      const { storage } = tempStorage();
      const signer = nacl.sign.keyPair();
      const reporter = await openReporter(broker.url, v, addr, storage, { encoding: 'cbor', signer });
      const p = await reporter.publish('telemetry', { watts: 1.5, queue: 3, bytes: new Uint8Array([1, 2, 3]) });
      await p.delivered;
      await until('telemetry', () => sub.seqsOf('telemetry').length > 0);
      const t = sub.got.find((g) => g.message.kind === 'telemetry')!;
      expect(t.encoding).toBe('cbor');
      expect(t.signedBy).toEqual(signer.publicKey);
      expect(t.message.body).toEqual({ watts: 1.5, queue: 3, bytes: new Uint8Array([1, 2, 3]) });
      if (v === 5) {
        expect(t.contentType).toBe('application/cbor');
        expect(t.userProperties).toEqual({ kind: 'telemetry' });
      }
    });
  });
}

describeMosquitto('Reporter on Mosquitto', () => {
  brokerSuite(mosquittoCase(5));
  brokerSuite(mosquittoCase(4));
});
describe('Reporter on Aedes', () => {
  brokerSuite(aedesCase);
});
describeRabbitMq('Reporter on RabbitMQ', () => {
  brokerSuite(rabbitCase);
});
