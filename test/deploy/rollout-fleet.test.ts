/**
 * `edgerun deploy rollout` end to end: five real `edgerun serve` devices of one group on a real
 * Mosquitto (plus one of another group the rollout must leave alone), one of them on a crossbar
 * profile far too noisy for the CNN, so it fails its canaries. The rollout (the real CLI) finds the
 * devices from their births, deploys wave 1, halts after wave 2 (1 failure of 2 > 0.2), rolls the
 * wave's activated device back, and its report says which device serves which version.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import type { RolloutReport } from '../../runtime/deploy/rollout.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, TrustStore } from '../../runtime/telemetry/keys.js';
import { edgerun, repoRoot, startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const FLEET = 'ro';
const operator = nacl.sign.keyPair();
/** Sorted by id, waves 20%,60%,100% are [d0], [d1, d2], [d3, d4]; d2 is the noisy one. */
const DEVICES = ['d0', 'd1', 'd2', 'd3', 'd4'];
const NOISY = 'd2';
const OUTSIDER = 'x-other';

let dir: string;
let broker: Mosquitto;
let watcher: mqtt.MqttClient;
const procs = new Map<string, EdgerunProcess>();
const births = new Map<string, Body>();
const results = new Map<string, Body[]>();

function startDevice(id: string, group: string, profile: string): void {
  procs.set(id, startEdgerun(['serve', '--url', broker.url, '--model', 'models/cnn.onnx', '--rate', '4', '--state-dir', join(dir, id)], {
    EDGERUN_DEVICE__ID: id, EDGERUN_DEVICE__FLEET: FLEET, EDGERUN_DEVICE__GROUP: group, EDGERUN_SECURITY__KEY_DIR: join(dir, id, 'keys'),
    EDGERUN_PLACEMENT__DEFAULT: 'analog', EDGERUN_ANALOG__PROFILE: profile, EDGERUN_POWER__SENSOR: 'none', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '60000',
  }, 6000));
}

const context = (): string => [...procs].map(([id, p]) => `--- ${id} ---\n${p.log()}`).join('\n');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-rollout-'));
  // Each device its own key directory (its replay state is its own), each trusting the operator.
  for (const id of [...DEVICES, OUTSIDER]) {
    const keys = new FsStorage(join(dir, id, 'keys'), 0o600);
    await (await TrustStore.open(keys)).add('operator', operator.publicKey);
    await keys.close();
  }
  writeFileSync(join(dir, 'operator.key'), encodeKeyFile(operator, 'operator'), { mode: 0o600 });
  // The PCM profile with 20 times its programming noise: the CNN cannot pass its canaries on it.
  const pcm = JSON.parse(readFileSync(join(repoRoot, 'drivers/crossbar/profiles/pcm.json'), 'utf8')) as Body;
  const noisy = { ...pcm, name: 'pcm-noisy', programmingNoise: { ...pcm.programmingNoise, scale: 20 } };
  writeFileSync(join(dir, 'noisy.json'), JSON.stringify(noisy));
  broker = await Mosquitto.start({ persistence: false });
  watcher = await mqtt.connectAsync(broker.url, { clientId: 'rollout-watch', reconnectPeriod: 0 });
  watcher.on('message', (topic, payload) => {
    const [, , device, kind] = topic.split('/');
    try {
      const body = decodeMessage<Body>(payload).message.body;
      if (kind === 'status' && body.state === 'online') births.set(device!, body);
      if (kind === 'results') results.set(device!, [...(results.get(device!) ?? []), body]);
    } catch { /* not a message */ }
  });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/status`, { qos: 1 });
  await watcher.subscribeAsync(`edgerun/${FLEET}/+/results`, { qos: 1 });
}, 60_000);

afterAll(async () => {
  for (const p of procs.values()) p.proc.kill('SIGKILL');
  await Promise.all([...procs.values()].map((p) => p.exit));
  await watcher?.endAsync(true);
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describeMosquitto('deploy rollout over a fleet', () => {
  it('halts after the wave with a canary failure and reports which device serves which version', async () => {
    for (const id of DEVICES) startDevice(id, 'line', id === NOISY ? join(dir, 'noisy.json') : 'pcm');
    startDevice(OUTSIDER, 'other', 'pcm');
    for (const id of [...DEVICES, OUTSIDER]) await until(`${id} online and serving`, () => births.get(id) && results.get(id)?.length, 120_000, context);
    expect(births.get('d0')).toMatchObject({ group: 'line', fleet: FLEET });
    expect(births.get(OUTSIDER)).toMatchObject({ group: 'other' });

    const bundle = join(dir, 'cnn-2.0.0.bundle');
    // Thresholds far from both sides: pcm devices agreed with digital on 94-100 % of the 64 canaries in 12 device instances tried
    // (cosine ≥ 0.995) and the noisy one on ≤ 41 % (cosine ≤ 0.66, 6 instances);
    // the defaults (0.9, 0.97) sit within a few canaries of pcm's spread.
    const built = await edgerun(['deploy', 'build', 'models/cnn.onnx', '--version', '2.0.0', '--canary', 'models/data/canary-64.bin', '-o', bundle, '--json',
      '--min-agreement', '0.75', '--min-cosine', '0.9']);
    expect(built.code, built.stderr).toBe(0);
    const signed = await edgerun(['deploy', 'sign', bundle, '--key', join(dir, 'operator.key'), '--json']);
    expect(signed.code, signed.stderr).toBe(0);

    const reportFile = join(dir, 'report.json');
    const run = await edgerun(['deploy', 'rollout', bundle, '--url', broker.url, '--fleet', FLEET, '--group', 'line', '--waves', '20%,60%,100%',
      '--abort-failure-rate', '0.2', '--rollback-failed', '--key', join(dir, 'operator.key'), '--chunk-size', '65536', '--discover', '2', '--timeout', '150', '--report', reportFile]);
    expect(run.code, `${run.stdout}\n${run.stderr}\n${context()}`).toBe(1);
    expect(run.stdout).toMatch(/HALTED at wave 2 of 3/);

    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as RolloutReport;
    expect(report).toMatchObject({ model: 'cnn', version: '2.0.0', fleet: FLEET, group: 'line', halted: true });
    expect(report.waves, `${JSON.stringify(report.devices, null, 1)}\n${context()}`).toEqual([
      { wave: 1, devices: ['d0'], failureRate: 0, halted: false },
      { wave: 2, devices: ['d1', 'd2'], failureRate: 0.5, halted: true },
    ]);
    const row = (id: string) => report.devices.find((d) => d.device === id)!;
    expect(report.devices.map((d) => d.device)).toEqual(DEVICES); // the other group is not a target
    expect(row('d0')).toMatchObject({ wave: 1, outcome: 'active', serving: '2.0.0' });
    expect(row('d1')).toMatchObject({ wave: 2, outcome: 'active', rolledBack: true });
    expect(row('d1').serving).toBeUndefined(); // back on the model it was started with
    expect(row('d2'), `${JSON.stringify(row('d2'))}\n${context()}`).toMatchObject({ wave: 2, outcome: 'failed' });
    expect(row('d2').reason).toMatch(/^canary-failed/);
    expect(row('d2').serving).toBeUndefined();
    for (const id of ['d3', 'd4']) expect(row(id)).toMatchObject({ outcome: 'not-started' });

    // What the devices themselves say: d0's new results name 2.0.0, d1's (after the rollback) do not.
    const mark = new Map([...results].map(([id, r]) => [id, r.length]));
    const fresh = (id: string) => (results.get(id) ?? []).slice(mark.get(id));
    await until('new results from d0 and d1', () => (fresh('d0').length >= 2 && fresh('d1').length >= 2) || undefined, 60_000, context);
    expect(fresh('d0').at(-1)!.modelVersion).toBe('2.0.0');
    expect(fresh('d1').at(-1)!.modelVersion).toBeUndefined();
    expect(births.get(OUTSIDER)!.modelVersions ?? {}).toEqual({});
  }, 420_000);
});
