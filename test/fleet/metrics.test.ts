import { afterAll, beforeAll, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { FleetMetricsCollector } from '../../runtime/fleet/metrics.js';
import { Listener } from '../../runtime/telemetry/listener.js';
import { encodeMessage } from '../../runtime/telemetry/envelope.js';
import { generateKeyPair } from '../../runtime/telemetry/keys.js';
import { deviceTopic, type OutgoingKind } from '../../runtime/telemetry/topics.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { ZERO_BREAKDOWN } from '../../runtime/power/energy-model.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

describeMosquitto('fleet metrics from MQTT messages (real Mosquitto)', () => {
  let broker: Mosquitto;
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); });
  afterAll(() => broker.stop());

  it('per device and fleet-wide: latency, accuracy, energy, battery, fallbacks, events, lost and duplicated', async () => {
    const clock = new ManualClock(1_000_000);
    const collector = new FleetMetricsCollector(new Listener({ prefix: 'edgerun' }), clock);
    const consumer = mqtt.connect(broker.url, { clientId: 'fleet-consumer', protocolVersion: 5, reconnectPeriod: 0 });
    const device = mqtt.connect(broker.url, { clientId: 'fleet-devices', protocolVersion: 5, reconnectPeriod: 0 });
    let received = 0;
    // each message arrives 20 ms (d1) or 40 ms (d2) after its device timestamp
    consumer.on('message', (topic, payload, packet) => {
      received++;
      collector.offer(topic, payload, { retained: packet.retain });
    });
    await consumer.subscribeAsync('edgerun/lab/+/+', { qos: 1 });
    const send = async (dev: string, seq: number, kind: OutgoingKind, body: unknown, ts: number, signer?: ReturnType<typeof generateKeyPair>): Promise<void> => {
      const payload = encodeMessage({ device: dev, seq, ts, kind, body }, signer ? { signer } : {});
      clock.set(Math.max(clock.now(), ts + (dev === 'd1' ? 20 : 40)));
      await device.publishAsync(deviceTopic({ prefix: 'edgerun', fleet: 'lab', device: dev }, kind), Buffer.from(payload), { qos: 1 });
      await until('delivery', () => (received >= sent ? true : undefined), 10_000);
    };
    let sent = 0;
    const result = (correct: boolean, backend = 'analog') => ({ correct, backend, energyJ: 2e-6, latencyMs: 1 });
    // d1: seqs 1..10 at 1 per second, seq 4 sent twice (a resend), seq 7 never (lost), one fallback
    for (let seq = 1; seq <= 10; seq++) {
      if (seq === 7) continue;
      sent++; await send('d1', seq, 'results', result(seq % 5 !== 0, seq === 9 ? 'digital-fallback' : 'analog'), 1_000_000 + seq * 1000);
      if (seq === 4) { sent++; await send('d1', seq, 'results', result(true), 1_000_000 + seq * 1000); }
    }
    sent++; await send('d1', 11, 'telemetry', { power: { batteryPct: 62.5, energy: { breakdownJ: { ...ZERO_BREAKDOWN, adc: 1e-6, analogMac: 2e-6, total: 3e-6 } } } }, 1_011_000);
    sent++; await send('d1', 12, 'events', { type: 'guard', action: 'fallback' }, 1_012_000);
    sent++; await send('d1', 13, 'events', { type: 'inference-failed' }, 1_013_000);
    // d2: 4 results, all correct, 3 µJ each
    for (let seq = 1; seq <= 4; seq++) { sent++; await send('d2', seq, 'results', { correct: true, backend: 'digital', energyJ: 3e-6 }, 1_020_000 + seq * 500); }
    sent++; await send('d2', 5, 'telemetry', { power: { batteryPct: 80 } }, 1_023_000);
    // a forged message: signed, then altered — the listener refuses it and nothing counts it
    const key = generateKeyPair();
    const forged = encodeMessage({ device: 'd2', seq: 6, ts: 1_024_000, kind: 'results', body: { correct: false } }, { signer: key });
    forged[forged.indexOf('false'.charCodeAt(0))] = 'F'.charCodeAt(0);
    sent++;
    await device.publishAsync('edgerun/lab/d2/results', Buffer.from(forged), { qos: 1 });
    await until('forged delivery', () => (received >= sent ? true : undefined), 10_000);
    await Promise.all([consumer.endAsync(), device.endAsync()]);

    const m = collector.summary({ loadGeneratorCpuShare: 0.05 });
    const d1 = m.devices.d1!, d2 = m.devices.d2!;
    expect(d1.results).toBe(9);
    expect(d1.duplicated).toBe(1);
    expect(d1.lost).toBe(1);
    expect(d1.accuracy).toBeCloseTo(7 / 9, 9); // 9 results (7 lost, the resend of 4 not counted again), 5 and 10 wrong
    expect(d1.latency.p99Ms).toBeCloseTo(20, 1); // HDR histogram: 3 significant digits
    expect(d1.fallbacks).toBe(1);
    expect(d1.events).toBe(1);
    expect(d1.batteryPercent).toBe(62.5);
    expect(d1.energyPerInferenceJ).toBeCloseTo(2e-6, 15);
    expect(d1.energyBreakdownJ?.adc).toBeCloseTo(1e-6, 15);
    expect(d1.averagePowerW).toBeCloseTo((9 * 2e-6) / 9, 12); // 9 results of 2 µJ over 9 s
    expect(d1.resultsPerSecond).toBeCloseTo(8 / 9, 9);
    expect(d2.results).toBe(4);
    expect(d2.latency.p50Ms).toBeCloseTo(40, 1);
    expect(d2.lost).toBe(0);
    expect(m.fleet.results).toBe(13);
    expect(m.fleet.lost).toBe(1);
    expect(m.fleet.duplicated).toBe(1);
    expect(m.fleet.batteryPercent).toBe(62.5); // the device that runs out first
    expect(m.fleet.energyPerInferenceJ).toBeCloseTo((9 * 2e-6 + 4 * 3e-6) / 13, 15);
    expect(m.fleet.latency.p99Ms).toBeCloseTo(40, 1);
    expect(m.fleet.latency.p50Ms).toBeCloseTo(20, 1);
    expect(m.rejected).toBe(1);
    expect(m.loadGeneratorCpuShare).toBe(0.05);
  }, 60_000);
});

it('a warm-up (timeFrom): results before it count for results and lost, but only later ones are timed', () => {
  const clock = new ManualClock(1_000_000);
  const collector = new FleetMetricsCollector(new Listener({ prefix: 'edgerun' }), clock);
  const topic = deviceTopic({ prefix: 'edgerun', fleet: 'lab', device: 'd1' }, 'results');
  collector.timeFrom(1_000_000 + 5_000);
  for (let seq = 1; seq <= 10; seq++) {
    if (seq === 3) continue; // lost, in the warm-up
    const ts = 1_000_000 + seq * 1_000;
    // 500 ms late during the warm-up, 10 ms after it
    clock.set(ts + (ts + 500 < 1_000_000 + 5_000 ? 500 : 10));
    collector.offer(topic, encodeMessage({ device: 'd1', seq, ts, kind: 'results', body: { correct: true } }));
  }
  const f = collector.summary().fleet;
  expect(f.results).toBe(9);
  expect(f.lost).toBe(1);
  expect(f.latency.count).toBe(6); // seqs 5..10 arrive after the warm-up
  expect(f.latency.maxMs).toBeCloseTo(10, 1); // the 500 ms arrivals of the warm-up are not in it
});
