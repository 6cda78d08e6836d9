/**
 * `npm start`: one command, nothing installed besides `npm install`. It starts
 *   1. the embedded MQTT broker (Aedes; TCP and WebSocket), on 1883/8883 when free, else free ports;
 *   2. a demo device — the `serve` daemon in-process — streaming results of both bundled models on
 *      the bundled Fashion-MNIST subset, with telemetry, events and signed commands;
 *   3. a demo camera — the `detect` daemon in-process — streaming detections of the synthetic camera
 *      (Frigate-style events, snapshots, counts);
 *   4. a listener (runtime/telemetry/listener.ts, dedupe on (device, session, seq)) printing a live summary;
 *   5. the dashboard (apps/dashboard), on http://127.0.0.1:8080/ when free, else a free port;
 * halfway it sends the device a signed command (run the CNN digitally) and shows its effect. It
 * ends by itself after --seconds (or on Ctrl-C) with exit code 0, saying where to look meanwhile.
 * Device state (outbox, keys) lives in a temporary directory that is removed at the end.
 */
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../../drivers/mqtt/embedded-broker.js';
import { startDashboard, type Dashboard } from '../../dashboard/server.js';
import { MqttClient } from '../../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { buildCommand } from '../../../runtime/telemetry/commands.js';
import { KeyStore, TrustStore } from '../../../runtime/telemetry/keys.js';
import { Listener } from '../../../runtime/telemetry/listener.js';
import { commandTopic, deviceRoot, fleetFilter } from '../../../runtime/telemetry/topics.js';
import { loadConfig, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';
import { LatencyRecorder } from '../../../runtime/latency.js';
import { packageRoot } from '../package-info.js';
import { BUNDLED_DATA, BUNDLED_MODELS } from './serve.js';
import { startDevice } from '../device/running-device.js';
import { BUNDLED_DETECTOR, startDetector } from './detect.js';

export interface DemoOptions {
  seconds: number;
  rate: number;
}

const repoFile = (p: string): string => relative(process.cwd(), join(packageRoot, p)) || '.';

interface ModelTally { results: number; correct: number; latency: LatencyRecorder; energyJ: number; energyN: number; backends: Record<string, number> }

async function startBroker(): Promise<EmbeddedBroker> {
  try {
    return await startEmbeddedBroker({ port: 1883, wsPort: 8883 });
  } catch {
    return startEmbeddedBroker({ port: 0, wsPort: 0 }); // 1883/8883 taken (a system broker?): any free ports
  }
}

async function startDemoDashboard(brokerWs: string, prefix: string): Promise<Dashboard> {
  try {
    return await startDashboard({ port: 8080, brokerWs, prefix });
  } catch {
    return startDashboard({ port: 0, brokerWs, prefix }); // 8080 taken: any free port
  }
}

export async function demoCommand(opts: DemoOptions, global: GlobalOptions): Promise<void> {
  const seconds = opts.seconds;
  const state = mkdtempSync(join(tmpdir(), 'edgerun-demo-'));
  const config = await loadConfig(global, { security: { keyDir: join(state, 'keys') }, device: { id: 'demo-1', fleet: 'demo' } });
  const prefix = config.mqtt.prefix;
  const broker = await startBroker();
  const dashboard = await startDemoDashboard(broker.wsUrl!, prefix);
  const root = deviceRoot({ prefix, fleet: config.device.fleet, device: config.device.id });

  // An operator key the device trusts: the demo signs a command with it.
  const keys = new FsStorage(join(state, 'keys'), 0o600);
  const operator = await new KeyStore(keys).generate('operator.key', { name: 'operator' });
  await (await TrustStore.open(keys, config.security.trustedKeysFile)).add('operator', operator.publicKey);
  await keys.close();

  console.log(`edgerun demo: a device streaming Fashion-MNIST results of ${BUNDLED_MODELS.map(repoFile).join(' and ')} over MQTT, for ${seconds} s (Ctrl-C ends it sooner)\n`);
  console.log(`  broker (embedded Aedes)  ${broker.url}   WebSocket ${broker.wsUrl}`);
  console.log(`  device topics            ${root}/{status,results,telemetry,events}   commands in ${root}/cmd/<name>`);
  console.log(`  watch from a terminal    npx edgerun listen --url ${broker.url} --protocol 4`);
  console.log(`  or any MQTT client       mosquitto_sub -h 127.0.0.1 -p ${broker.port} -t '${prefix}/#' -v`);
  console.log(`  dashboard                ${dashboard.url}   (to send commands, load ${relative(process.cwd(), join(state, 'keys', 'operator.key'))} into it)\n`);

  // The listener: B's dedupe/summary logic on its own connection.
  const listener = new Listener({ prefix, verify: nativeVerify });
  const tally = new Map<string, ModelTally>();
  let telemetry: Record<string, unknown> | undefined;
  const events: string[] = [];
  const tracks = new Map<string, { new: number; update: number; end: number; topScore: number }>();
  const watch = new MqttClient({ url: broker.url, clientId: `edgerun-demo-listener-${randomBytes(4).toString('hex')}`, protocolVersion: 4, clean: true });
  watch.onMessage((m) => {
    const o = listener.accept(m.topic, m.payload, { retained: m.retain });
    if (o.status !== 'new') return;
    const { kind, body } = o.message as { kind: string; body: Record<string, unknown> };
    if (kind === 'results') {
      const model = String(body.model);
      const t = tally.get(model) ?? { results: 0, correct: 0, latency: new LatencyRecorder(), energyJ: 0, energyN: 0, backends: {} };
      t.results++;
      if (body.correct) t.correct++;
      t.latency.record(Number(body.latencyMs));
      if (typeof body.energyJ === 'number') { t.energyJ += body.energyJ; t.energyN++; }
      t.backends[String(body.backend)] = (t.backends[String(body.backend)] ?? 0) + 1;
      tally.set(model, t);
    } else if (kind === 'telemetry') {
      telemetry = body;
    } else if (kind === 'events' && ['new', 'update', 'end'].includes(String(body.type))) {
      const e = body as { type: 'new' | 'update' | 'end'; after: { id: string; label: string; top_score: number; box: number[]; camera: string } };
      const t = tracks.get(e.after.label) ?? { new: 0, update: 0, end: 0, topScore: 0 };
      t[e.type]++;
      t.topScore = Math.max(t.topScore, e.after.top_score);
      tracks.set(e.after.label, t);
      if (e.type !== 'update') console.log(`  camera ${e.after.camera}: ${e.type === 'new' ? 'new' : 'gone'} ${e.after.label} ${e.after.id} (score ${e.after.top_score.toFixed(2)}, box [${e.after.box.join(', ')}])`);
    } else if (kind === 'events') {
      const e = body as { type?: string; command?: string; ok?: boolean; model?: string; to?: string; from?: string; reason?: string };
      const text = e.type === 'command-result' ? `command ${e.command} ${e.ok ? 'ok' : 'failed'}`
        : e.type === 'placement' ? `${e.model} moved ${e.from} → ${e.to}`
          : e.type === 'fallback' ? `${e.model} fell back to digital (${e.reason ?? ''})`
            : e.type === 'backend' ? `${e.model} now served by ${e.to}`
            : JSON.stringify(body).slice(0, 100);
      events.push(text);
      console.log(`  event: ${text}`);
    }
  });
  const subscribed = new Promise<void>((resolve) => {
    watch.onConnect(() => { void watch.subscribe(fleetFilter(prefix, '+', '+'), 1).then(() => resolve(), () => resolve()); });
  });
  watch.connect();
  await subscribed;

  const device = await startDevice({
    config, models: BUNDLED_MODELS.map((m) => join(packageRoot, m)), data: join(packageRoot, BUNDLED_DATA),
    rateHz: opts.rate, stateDir: state, url: broker.url, protocolVersion: 4,
  });

  // A second device: a camera streaming detections of the synthetic scene (the detect daemon).
  const camConfig = await loadConfig(global, { security: { keyDir: join(state, 'keys') }, device: { id: 'demo-cam', fleet: 'demo' }, detect: { camera: 'front', fps: 5 } });
  const camera = await startDetector({ config: camConfig, stateDir: join(state, 'camera'), url: broker.url, protocolVersion: 4 });
  console.log(`  camera demo-cam (synthetic scene) → ${repoFile(BUNDLED_DETECTOR)} → ${deviceRoot(camera.address)}/{events,snapshot/<label>,count/<label>}\n`);

  const line = (): string => {
    const parts = [...tally].map(([m, t]) => `${m} ${t.results} (${((t.correct / t.results) * 100).toFixed(1)} % correct)`);
    const s = listener.summary();
    const q = telemetry?.queueDepth;
    return `  ${parts.join(', ') || 'waiting for results'} | messages ${s.received}, duplicates ${s.duplicates}${q !== undefined ? ` | queue ${q}` : ''}`;
  };
  const started = Date.now();
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => { stop = resolve; });
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const end = setTimeout(stop, seconds * 1000);
  const ticker = setInterval(() => console.log(line()), 2000);
  // Halfway: a signed command from the operator key — run the CNN on the digital backend.
  const command = setTimeout(() => {
    const payload = buildCommand({ device: config.device.id, name: 'set-placement', args: { model: 'cnn', policy: 'digital' }, signer: operator });
    console.log(`  → signed command set-placement {model: cnn, policy: digital} to ${commandTopic(device.address, 'set-placement')}`);
    void watch.publish(commandTopic(device.address, 'set-placement'), payload, { qos: 1 }).catch(() => undefined);
  }, (seconds * 1000) / 2);
  await stopped;
  clearTimeout(end);
  clearTimeout(command);
  clearInterval(ticker);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  await Promise.all([device.stop({ drainMs: 5000 }), camera.stop({ drainMs: 5000 })]);
  const produced = device.device.produced;
  // Everything the device published was acknowledged by the broker: let the listener catch up.
  const until = Date.now() + 5000;
  while ([...tally.values()].reduce((a, t) => a + t.results, 0) < produced && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  await watch.end();
  await dashboard.close();
  await broker.close();
  rmSync(state, { recursive: true, force: true });

  const rows = [...tally].map(([m, t]) => {
    const latency = t.latency.summary();
    return [
      m, t.results, `${((t.correct / t.results) * 100).toFixed(2)}%`, latency.p50Ms.toFixed(2), latency.p99Ms.toFixed(2),
      t.energyN ? (t.energyJ / t.energyN * 1e6).toFixed(2) : '-', Object.entries(t.backends).map(([b, n]) => `${b} ${n}`).join(', '),
    ];
  });
  const s = listener.summary();
  console.log(`\n${((Date.now() - started) / 1000).toFixed(1)} s: ${produced} results produced, ${s.unique} unique messages received (${s.duplicates} duplicates, ${s.gaps} seq gaps)\n`);
  console.log(formatTable(['model', 'results', 'accuracy', 'p50 ms', 'p99 ms', 'µJ/inference (model)', 'backend'], rows, [false, true, true, true, true, true, false]));
  if (tracks.size) {
    console.log(`\ncamera front: ${camera.stream.counters.processed} frames detected`);
    console.log(formatTable(['label', 'tracks', 'updates', 'ended', 'best score'], [...tracks].map(([l, t]) => [l, t.new, t.update, t.end, t.topScore.toFixed(2)]), [false, true, true, true, true]));
  }
  console.log(`\nNext: npx edgerun detect --source <video|rtsp://…|/dev/video0> | npx edgerun serve (a device on its own) | npx edgerun broker | npx edgerun eval ${repoFile('models/cnn.onnx')} --data ${repoFile(BUNDLED_DATA)} | npx edgerun --help`);
}
