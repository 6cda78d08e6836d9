/**
 * The acceptance test of the MQTT reporting path (issue 6): a real device process (`edgerun serve
 * --count 10000`, the real Reporter with its durable outbox) streams 10,000 results to a real
 * Mosquitto while the broker is killed (SIGKILL) and restarted 5 times and the device process is
 * SIGKILLed once and restarted on the same state directory. A listener with a persistent session
 * (QoS 1) must end up holding every one of the 10,000 result numbers; duplicates (redeliveries and
 * outbox replays) are counted and reported.
 *
 * Nothing waits on wall-clock guesses: each chaos step waits for the listener to have received more
 * results (generous timeouts only bound a hang). Mosquitto autosaves its persistence DB every second
 * so the listener's session survives a SIGKILL of the broker.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { Listener } from '../../runtime/telemetry/listener.js';
import { until } from '../helpers/until.js';

const TOTAL = 10_000;
const DEVICE = 'chaos-1';
const FLEET = 'test';
const PREFIX = 'edgerun';

function startDevice(url: string, stateDir: string): EdgerunProcess {
  return startEdgerun(['serve', '--model', 'models/mlp.onnx', '--rate', '0', '--count', String(TOTAL), '--state-dir', stateDir, '--quiet'], {
    EDGERUN_MQTT__URL: url,
    EDGERUN_MQTT__PREFIX: PREFIX,
    EDGERUN_DEVICE__ID: DEVICE,
    EDGERUN_DEVICE__FLEET: FLEET,
    EDGERUN_PLACEMENT__DEFAULT: 'digital',
    EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '2000',
  });
}

describeMosquitto('chaos: 10,000 results through broker kills and a device SIGKILL', () => {
  let broker: Mosquitto;
  let stateDir: string;
  let listener: mqtt.MqttClient | undefined;
  let device: EdgerunProcess | undefined;

  beforeAll(async () => {
    // `user`: mosquitto started as root drops to user "mosquitto", which cannot write the test's
    // 0700 temp dir, so it would never save its DB (no effect when not root).
    const asUser = process.getuid?.() === 0 ? ['user root'] : [];
    broker = await Mosquitto.start({ persistence: true, config: [...asUser, 'autosave_interval 1', 'max_inflight_messages 100'] });
    stateDir = mkdtempSync(join(tmpdir(), 'edgerun-chaos-'));
  });
  afterAll(async () => {
    device?.proc.kill('SIGKILL');
    await listener?.endAsync(true);
    await broker?.dispose();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('the listener holds all 10,000 result numbers; duplicates are counted', { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    const numbers = new Map<number, number>(); // result number → times received
    const seqs = new Set<number>();
    let messages = 0, duplicateSeqs = 0, statusOffline = 0, sessionLost = 0;
    let connects = 0;
    // The fleet-side dedupe (edgerun listen's logic) beside the test's own bookkeeping.
    const dedupe = new Listener({ prefix: PREFIX });
    listener = mqtt.connect(broker.url, { clientId: 'chaos-listener', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 100, connectTimeout: 5000 });
    listener.on('connect', (ack) => { connects++; if (connects > 1 && !ack.sessionPresent) sessionLost++; });
    listener.on('error', () => undefined);
    listener.on('message', (topic, payload) => {
      const { message } = decodeMessage<{ n: number }>(payload);
      if (topic.endsWith('/status')) { if ((message.body as unknown as { state?: string }).state === 'offline') statusOffline++; return; }
      if (!topic.endsWith('/results')) return;
      dedupe.accept(topic, payload);
      messages++;
      if (seqs.has(message.seq)) duplicateSeqs++;
      seqs.add(message.seq);
      numbers.set(message.body.n, (numbers.get(message.body.n) ?? 0) + 1);
    });
    await until('the listener to connect', () => connects > 0, 30_000);
    await listener.subscribeAsync([`${PREFIX}/${FLEET}/${DEVICE}/results`, `${PREFIX}/${FLEET}/${DEVICE}/status`], { qos: 1 });
    // The session (with its subscription) is on disk before the first kill.
    await until('mosquitto to save its persistence DB', () => existsSync(join(broker.dir, 'mosquitto.db')), 30_000);

    const context = () => `received ${numbers.size} distinct of ${TOTAL} (${messages} messages)\n--- device ---\n${device?.log() ?? ''}\n--- broker ---\n${broker.log}`;
    device = startDevice(broker.url, stateDir);
    const milestones = [800, 2000, 3500, 5500, 7500];
    const deviceKillAt = 4500;
    let deviceKilled = false;
    const kills: { at: number; kind: string }[] = [];
    for (const m of [...milestones, deviceKillAt].sort((a, b) => a - b)) {
      await until(`${m} results at the listener`, () => numbers.size >= m, 180_000, context);
      if (m === deviceKillAt) {
        device.proc.kill('SIGKILL');
        const e = await device.exit;
        expect(e.signal).toBe('SIGKILL');
        kills.push({ at: numbers.size, kind: 'device SIGKILL' });
        deviceKilled = true;
        device = startDevice(broker.url, stateDir);
      } else {
        await broker.kill();
        kills.push({ at: numbers.size, kind: 'broker SIGKILL' });
        await broker.restart();
      }
    }
    expect(deviceKilled).toBe(true);
    const exit = await Promise.race([device.exit, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`device did not finish\n${context()}`)), 300_000))]);
    expect(exit, context()).toEqual({ code: 0, signal: null });
    // Everything the device had acknowledged is at the broker; wait for the listener to drain it.
    await until(`all ${TOTAL} result numbers`, () => numbers.size >= TOTAL, 120_000, context);

    const missing: number[] = [];
    for (let n = 0; n < TOTAL; n++) if (!numbers.has(n)) missing.push(n);
    const duplicateNumbers = [...numbers.values()].reduce((a, c) => a + (c - 1), 0);
    const report = {
      results: TOTAL, distinct: numbers.size, lost: missing.length, messages,
      duplicates: { bySeq: duplicateSeqs, byResultNumber: duplicateNumbers, resentAfterCrash: duplicateNumbers - duplicateSeqs },
      listener: dedupe.summary().devices[DEVICE], kills, listenerReconnects: connects - 1, listenerSessionLost: sessionLost, seconds: (Date.now() - t0) / 1000,
    };
    console.log(`chaos report: ${JSON.stringify(report)}`);
    expect(missing.slice(0, 20)).toEqual([]);
    expect([...numbers.keys()].every((n) => Number.isInteger(n) && n >= 0 && n < TOTAL)).toBe(true);
    expect(kills.filter((k) => k.kind === 'broker SIGKILL')).toHaveLength(5);
    expect(messages).toBe(TOTAL + duplicateNumbers);
    expect(dedupe.summary().duplicates).toBe(duplicateSeqs);
    expect(dedupe.summary().unique).toBe(messages - duplicateSeqs);
  });
});
