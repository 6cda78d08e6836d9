import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { FleetMetricsCollector, mergePartials } from '../../runtime/fleet/metrics.js';
import { SeqRanges } from '../../runtime/fleet/seq-ranges.js';
import type { LatencySummary } from '../../runtime/latency.js';
import { Listener } from '../../runtime/telemetry/listener.js';
import { encodeMessage } from '../../runtime/telemetry/envelope.js';
import { deviceTopic, type OutgoingKind } from '../../runtime/telemetry/topics.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

describe('SeqRanges', () => {
  it('holds exactly the seqs added, whatever the order, and unites exactly', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), (xs, ys) => {
      const a = new SeqRanges(), set = new Set<number>();
      for (const x of xs) expect(a.add(x)).toBe(!set.has(x)), set.add(x);
      expect(a.size).toBe(set.size);
      for (let q = 0; q <= 200; q++) expect(a.has(q)).toBe(set.has(q));
      const flat = a.toJSON();
      for (let i = 2; i < flat.length; i += 2) expect(flat[i]!).toBeGreaterThan(flat[i - 1]! + 1); // disjoint, not adjacent
      const b = SeqRanges.from(new SeqRanges().toJSON());
      for (const y of ys) b.add(y);
      const overlap = ys.filter((y, i) => ys.indexOf(y) === i && set.has(y)).length;
      expect(a.addAll(b)).toBe(overlap);
      expect(a.size).toBe(new Set([...xs, ...ys]).size);
      expect(a.lowest).toBe(a.size ? Math.min(...xs, ...ys) : undefined);
      expect(a.highest).toBe(a.size ? Math.max(...xs, ...ys) : undefined);
    }), { numRuns: 200 });
  });
});

/** Equal percentiles and count; the max of an added histogram is its bucket's top (HdrHistogram: 3 significant digits). */
function sameLatency(a: LatencySummary, b: LatencySummary): void {
  expect({ ...a, maxMs: 0 }).toEqual({ ...b, maxMs: 0 });
  expect(Math.abs(a.maxMs - b.maxMs)).toBeLessThanOrEqual(b.maxMs * 1e-3);
}

describeMosquitto('consumers on a shared subscription, merged (real Mosquitto)', () => {
  let broker: Mosquitto;
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); });
  afterAll(() => broker.stop());

  it('merged partials equal one consumer that saw everything: results, latency percentiles, lost, duplicated; groups add up', async () => {
    const clock = new ManualClock(2_000_000);
    const collector = (): FleetMetricsCollector => new FleetMetricsCollector(new Listener({ prefix: 'edgerun' }), clock);
    const whole = collector();
    const shared = [collector(), collector()];
    const received = [0, 0, 0];
    const clients = [0, 1, 2].map((i) => mqtt.connect(broker.url, { clientId: `consumer-${i}`, protocolVersion: 5, reconnectPeriod: 0 }));
    clients.forEach((c, i) => c.on('message', (topic, payload, packet) => {
      received[i]!++;
      (i === 2 ? whole : shared[i]!).offer(topic, payload, { retained: packet.retain });
    }));
    await Promise.all([clients[0]!.subscribeAsync('$share/g/edgerun/lab/+/+', { qos: 1 }), clients[1]!.subscribeAsync('$share/g/edgerun/lab/+/+', { qos: 1 }), clients[2]!.subscribeAsync('edgerun/lab/+/+', { qos: 1 })]);
    const device = mqtt.connect(broker.url, { clientId: 'devices', protocolVersion: 5, reconnectPeriod: 0 });
    let sent = 0;
    const send = async (dev: string, seq: number, kind: OutgoingKind, body: unknown, delayMs: number): Promise<void> => {
      const ts = clock.now() + 1;
      clock.set(ts + delayMs); // arrival stamped delayMs after the device timestamp, for every consumer
      sent++;
      await device.publishAsync(deviceTopic({ prefix: 'edgerun', fleet: 'lab', device: dev }, kind), Buffer.from(encodeMessage({ device: dev, session: `s-${dev}`, seq, ts, kind, body })), { qos: 1 });
      await until('delivery', () => (received[0]! + received[1]! >= sent && received[2]! >= sent ? true : undefined), 10_000);
    };
    // d1: 40 results, seq 17 never sent (lost); d2: 30 results, seq 5 sent twice; d3: a birth setting seq 100 aside for its will, then 20 results
    for (let seq = 1; seq <= 40; seq++) if (seq !== 17) await send('d1', seq, 'results', { correct: seq % 4 !== 0, energyJ: 1e-6 }, 5 + (seq % 7));
    for (let seq = 1; seq <= 30; seq++) {
      await send('d2', seq, 'results', { correct: true, energyJ: 2e-6 }, 30 + seq);
      if (seq === 5) await send('d2', seq, 'results', { correct: true, energyJ: 2e-6 }, 30 + seq);
    }
    await send('d3', 99, 'status', { state: 'online', willSeq: 100 }, 1);
    for (let seq = 101; seq <= 120; seq++) await send('d3', seq, 'results', { correct: false }, 60);
    await Promise.all([...clients, device].map((c) => c.endAsync()));

    expect(received[0]).toBeGreaterThan(0); // the broker dealt the messages out to both
    expect(received[1]).toBeGreaterThan(0);
    const one = whole.summary();
    const { metrics, groups } = mergePartials(shared.map((c) => JSON.parse(JSON.stringify(c.partial())) as ReturnType<typeof c.partial>), { a: ['d1'], b: ['d2', 'd3'] });
    for (const d of ['d1', 'd2', 'd3']) {
      const m = metrics.devices[d]!, w = one.devices[d]!;
      expect({ d, results: m.results, lost: m.lost, duplicated: m.duplicated, accuracy: m.accuracy }).toEqual({ d, results: w.results, lost: w.lost, duplicated: w.duplicated, accuracy: w.accuracy });
      // d2's resend is in both consumers' histograms when the broker gave it to the other one
      if (d !== 'd2') sameLatency(m.latency, w.latency);
    }
    expect(metrics.devices.d1!).toMatchObject({ results: 39, lost: 1, duplicated: 0 });
    expect(metrics.devices.d2!).toMatchObject({ results: 30, lost: 0, duplicated: 1 });
    expect(metrics.devices.d3!).toMatchObject({ results: 20, lost: 0, duplicated: 0 });
    expect(metrics.fleet.results).toBe(89);
    expect([89, 90]).toContain(metrics.fleet.latency.count);
    expect(metrics.fleet.latency.p99Ms).toBe(one.fleet.latency.p99Ms);
    expect(metrics.fleet.lost).toBe(1);
    expect(groups.a!).toMatchObject({ results: 39, lost: 1, duplicated: 0, accuracy: 29 / 39 });
    expect(groups.a!.energyPerInferenceJ).toBeCloseTo(1e-6, 15);
    sameLatency(groups.a!.latency, one.devices.d1!.latency);
    expect(groups.b!).toMatchObject({ results: 50, lost: 0, duplicated: 1 });
    expect(groups.b!.latency.maxMs).toBeCloseTo(60, 1);
  }, 90_000);
});
