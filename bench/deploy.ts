/**
 * Deployment: time from `push` to the new version serving, for the CNN bundle over a local
 * Mosquitto to a device serving it on the analog crossbar (pcm), split into transfer, verify (with
 * staging), self-test and switch; and the inference gap around the switch — the time between the
 * last result of the old version and the first of the new — beside the steady-state interval
 * between results, measured in the same run. The device streams as fast as it can (rate 0).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { startDevice } from '../apps/edgerun/device/running-device.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { MqttClient } from '../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../drivers/storage/fs-storage.js';
import { resolveConfig } from '../runtime/config.js';
import { parseDataset } from '../runtime/dataset.js';
import { buildBundle } from '../runtime/deploy/build.js';
import { packBundle, readBundle } from '../runtime/deploy/bundle.js';
import { pushBundle } from '../runtime/deploy/pusher.js';
import { signManifest } from '../runtime/deploy/signature.js';
import { loadModel } from '../runtime/model/load.js';
import { decodeMessage } from '../runtime/telemetry/envelope.js';
import { TrustStore } from '../runtime/telemetry/keys.js';
import { fmt, median, report } from './measure.js';

const DEPLOYMENTS = 3;
const root = new URL('..', import.meta.url).pathname;

export async function main(): Promise<void> {
  console.log(`\n# deploy: CNN bundle pushed in 64 KiB chunks over a local Mosquitto to a device serving it on analog pcm, ${DEPLOYMENTS} deployments`);
  const { Mosquitto, mosquittoBinary } = await import('../test/helpers/mosquitto.js');
  if (!mosquittoBinary) {
    console.log('deploy bench skipped: mosquitto not installed (apt-get install mosquitto)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-bench-deploy-'));
  const operator = nacl.sign.keyPair();
  const keys = new FsStorage(join(dir, 'keys'), 0o600);
  await (await TrustStore.open(keys)).add('operator', operator.publicKey);
  await keys.close();
  const broker = await Mosquitto.start({ persistence: false });
  const config = resolveConfig({ env: {}, flags: { device: { id: 'bench', fleet: 'bench' }, placement: { default: 'analog' }, analog: { profile: 'pcm' }, power: { sensor: 'none' }, security: { keyDir: join(dir, 'keys') }, mqtt: { telemetryIntervalMs: 60_000 } } });
  const device = await startDevice({ config, models: [join(root, 'models/cnn.onnx')], data: join(root, 'models/data/fashion-mnist-test-2000.bin'), rateHz: 0, stateDir: join(dir, 'state'), url: broker.url });
  const arrivals: { t: number; version: string | null }[] = [];
  const watch = await mqtt.connectAsync(broker.url, { clientId: 'bench-deploy-watch', reconnectPeriod: 0 });
  watch.on('message', (_topic, payload) => {
    const body = decodeMessage<{ modelVersion?: string }>(payload).message.body;
    arrivals.push({ t: performance.now(), version: body.modelVersion ?? null });
  });
  await watch.subscribeAsync('edgerun/bench/bench/results', { qos: 1 });
  const pusher = new MqttClient({ url: broker.url, clientId: 'bench-deploy-push', clean: true });
  const connected = new Promise<void>((r) => pusher.onConnect(() => r()));
  pusher.connect();
  await connected;
  const digital = new DigitalBackend();
  const model = loadModel(new Uint8Array(readFileSync(join(root, 'models/cnn.onnx'))));
  const canary = parseDataset(new Uint8Array(readFileSync(join(root, 'models/data/canary-64.bin'))));
  const rows: Record<string, number[]> = { total: [], transfer: [], verify: [], selfTest: [], switch: [], gap: [], steadyMedian: [], steadyMax: [] };
  try {
    for (let i = 1; i <= DEPLOYMENTS; i++) {
      const version = `1.0.${i}`;
      const unsigned = await buildBundle({ id: 'cnn', version, model, digital, canary, canaryCount: 32, minRuntime: '0.1.0', minAgreement: 0.85, minCosine: 0.95 });
      const b = await readBundle(unsigned, { maxBytes: 1 << 26, maxModelBytes: 1 << 26 });
      const bytes = await packBundle({ ...b, signature: signManifest(b.manifestBytes, operator) });
      await new Promise((r) => setTimeout(r, 3000));
      const steadyFrom = arrivals.length;
      await new Promise((r) => setTimeout(r, 3000));
      const steady = arrivals.slice(steadyFrom).map((a, k, all) => (k ? a.t - all[k - 1]!.t : NaN)).slice(1);
      const t0 = performance.now();
      const status = await pushBundle({ mqtt: pusher, address: { prefix: 'edgerun', fleet: 'bench', device: 'bench' }, bytes, id: `bench-${i}`, signer: operator, silenceMs: 120_000 });
      if (status.state !== 'active') throw new Error(`deployment ${version}: ${status.state} ${status.reason}: ${status.detail}`);
      while (!arrivals.some((a) => a.version === version)) await new Promise((r) => setTimeout(r, 5));
      const firstNew = arrivals.findIndex((a) => a.version === version);
      const t = status.timings!;
      rows.total!.push(arrivals[firstNew]!.t - t0);
      rows.transfer!.push(t.transferMs!);
      rows.verify!.push(t.verifyMs! + t.stageMs!);
      rows.selfTest!.push(t.selfTestMs!);
      rows.switch!.push(t.switchMs!);
      rows.gap!.push(arrivals[firstNew]!.t - arrivals[firstNew - 1]!.t);
      rows.steadyMedian!.push(median(steady));
      rows.steadyMax!.push(Math.max(...steady));
    }
  } finally {
    await digital.dispose();
    await pusher.end();
    await watch.endAsync(true);
    await device.stop({ drainMs: 2000 });
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  const m = (k: string): string => `${fmt(median(rows[k]!), 1)} ms (${rows[k]!.map((x) => fmt(x, 1)).join(', ')})`;
  report('push → first result of the new version', m('total'));
  report('  transfer (command + chunks)', m('transfer'));
  report('  verify + stage', m('verify'));
  report('  self-test (place on analog, 32 canaries)', m('selfTest'));
  report('  switch (pointer + swap)', m('switch'));
  report('gap across the switch (last old → first new result)', m('gap'));
  report('steady-state interval between results: median / max', `${fmt(median(rows.steadyMedian!), 2)} / ${fmt(median(rows.steadyMax!), 1)} ms`);
  report('gap across the switch / steady-state median interval', `${fmt(median(rows.gap!) / median(rows.steadyMedian!), 1)}×`);
}
