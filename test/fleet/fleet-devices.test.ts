/**
 * `edgerun fleet devices`: a fleet file's emulated devices, many per worker thread, each a whole
 * device on a real Mosquitto. The consumer is the real telemetry Listener on its own connection:
 * births, results, signatures, wills; and a SIGKILLed fleet process restarted on its state dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { edgerun, repoRoot, startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { Listener, type ListenedMessage } from '../../runtime/telemetry/listener.js';
import { nativeVerify } from '../../drivers/crypto/ed25519.js';

const PREFIX = 'edgerun';

/** What a consumer on the broker saw, per device: statuses in order, result numbers, signers. */
class FleetWatcher {
  readonly statuses = new Map<string, Record<string, unknown>[]>();
  readonly results = new Map<string, number[]>();
  readonly signedResults = new Map<string, number>();
  readonly sessions = new Map<string, Set<string>>();
  readonly telemetry = new Map<string, Record<string, unknown>>();
  readonly listener = new Listener({ prefix: PREFIX, verify: nativeVerify });
  rejected = 0;
  #client: mqtt.MqttClient | undefined;

  async start(url: string, fleet: string): Promise<void> {
    this.#client = await mqtt.connectAsync(url, { clientId: `watch-${fleet}-${process.pid}`, clean: true });
    this.#client.on('message', (topic, payload, packet) => this.#offer(topic, payload, packet.retain));
    await this.#client.subscribeAsync(`${PREFIX}/${fleet}/+/+`, { qos: 1 });
  }

  #offer(topic: string, payload: Buffer, retained: boolean): void {
    const o = this.listener.accept(topic, payload, { retained });
    if (o.status === 'rejected') { this.rejected++; return; }
    if (o.status === 'duplicate' || o.status === 'retained') return;
    const m: ListenedMessage = o.message;
    if (m.session) (this.sessions.get(m.device) ?? this.sessions.set(m.device, new Set()).get(m.device)!).add(m.session);
    if (m.kind === 'status') (this.statuses.get(m.device) ?? this.statuses.set(m.device, []).get(m.device)!).push(m.body as Record<string, unknown>);
    if (m.kind === 'telemetry') this.telemetry.set(m.device, m.body as Record<string, unknown>);
    if (m.kind === 'results') {
      (this.results.get(m.device) ?? this.results.set(m.device, []).get(m.device)!).push((m.body as { n: number }).n);
      if (m.signedBy) this.signedResults.set(m.device, (this.signedResults.get(m.device) ?? 0) + 1);
    }
  }

  lastState(device: string): unknown {
    return this.statuses.get(device)?.at(-1)?.state;
  }

  count(device: string): number {
    return this.results.get(device)?.length ?? 0;
  }

  async stop(): Promise<void> {
    await this.#client?.endAsync();
  }
}

const runFleet = (args: string[], globalArgs: string[] = []): EdgerunProcess => startEdgerun([...globalArgs, 'fleet', 'devices', ...args], {}, 1 << 20);

describeMosquitto('edgerun fleet devices on a real Mosquitto', () => {
  let broker: Mosquitto;
  let dir: string;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    dir = mkdtempSync(join(tmpdir(), 'edgerun-fleet-devices-'));
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a fleet file\'s 6 devices in 2 groups on 2 worker threads: births name group and profile, every device reports results, the signing group\'s are verified', async () => {
    const file = join(dir, 'plant.yaml');
    writeFileSync(file, [
      'fleet: plant',
      'groups:',
      '  - name: line',
      '    count: 4',
      '    profile: pcm',
      '    age: 1d',
      '    rateHz: 4',
      '    seed: 100',
      '    battery: { capacityWh: 5, initialPct: 80, idleW: 2 }',
      '  - name: dock',
      '    count: 2',
      '    profile: ideal',
      '    rateHz: 4',
      '    sign: true',
    ].join('\n'));
    const watcher = new FleetWatcher();
    await watcher.start(broker.url, 'plant');
    // The fleet's devices start from the --config file: telemetry every second here.
    const config = join(dir, 'edgerun.json');
    writeFileSync(config, JSON.stringify({ mqtt: { telemetryIntervalMs: 1000 } }));
    const fleet = runFleet([file, '--url', broker.url, '--workers', '2', '--state-dir', join(dir, 'plant-state'), '--interval', '1'], ['--config', config]);
    procs.push(fleet.proc);
    const ids = ['line-0', 'line-1', 'line-2', 'line-3', 'dock-0', 'dock-1'];
    const battery = (id: string): number | undefined => (watcher.telemetry.get(id)?.power as { batteryPct?: number } | undefined)?.batteryPct;
    try {
      await until('3 results from every device, battery figures from the line, and a progress line with all 6 online', () => (ids.every((id) => watcher.count(id) >= 3) && ids.slice(0, 4).every((id) => battery(id) !== undefined) && /6\/6 online, [\d.]+ results\/s, \d+ unacknowledged, RSS \d+ MiB/.test(fleet.log()) ? true : undefined), 150_000,
        () => `${fleet.log()}\nresults: ${ids.map((id) => `${id} ${watcher.count(id)}`).join(', ')}`);
    } finally {
      fleet.proc.kill('SIGTERM');
    }
    expect((await fleet.exit).code, fleet.log()).toBe(0);
    await watcher.stop();

    for (const id of ids) {
      const birth = watcher.statuses.get(id)!.find((s) => s.state === 'online')!;
      expect(birth, id).toMatchObject({ fleet: 'plant', device: id, group: id.split('-')[0], profile: id.startsWith('line') ? 'pcm' : 'ideal', models: ['mlp'] });
      // Clean stop: each device said goodbye itself (not its will).
      expect(watcher.statuses.get(id)!.at(-1), id).toMatchObject({ state: 'offline', reason: 'shutdown' });
      expect(new Set(watcher.results.get(id)).size, id).toBe(watcher.count(id));
    }
    // Devices are their own instances: seeds of the group in order, the fleet file's age.
    expect(ids.slice(0, 4).map((id) => watcher.statuses.get(id)![0]!.seed)).toEqual([100, 101, 102, 103]);
    expect(watcher.statuses.get('line-0')![0]!.ageS).toBe(86_400);
    // The emulated device runs at its age; the simulated battery (80 % at start) is drained by the inferences.
    for (const id of ids.slice(0, 4)) {
      expect(watcher.telemetry.get(id)!.deviceAgeS as number, id).toBeGreaterThanOrEqual(86_400);
      expect(battery(id), id).toBeGreaterThan(0);
      expect(battery(id), id).toBeLessThan(80);
    }
    expect(battery('dock-0')).toBeUndefined();
    // Signed where the fleet file says so, and the signatures verify (a forged one would be rejected).
    expect(watcher.signedResults.get('dock-0')).toBe(watcher.count('dock-0'));
    expect(watcher.signedResults.get('dock-1')).toBe(watcher.count('dock-1'));
    expect(watcher.signedResults.get('line-0')).toBeUndefined();
    expect(watcher.rejected).toBe(0);
    expect(existsSync(join(dir, 'plant-state', 'dock-0', 'keys'))).toBe(true);
    expect(existsSync(join(dir, 'plant-state', 'line-0', 'outbox'))).toBe(true);
  }, 240_000);

  it('a fleet process SIGKILLed mid-run: its devices go offline by their wills, come back on restart, and no result number is missing', async () => {
    const file = join(dir, 'crash.json');
    writeFileSync(file, JSON.stringify({ fleet: 'crash', groups: [{ name: 'cam', count: 4, rateHz: 5, seed: 7 }] }));
    const stateDir = join(dir, 'crash-state');
    const ids = ['cam-0', 'cam-1', 'cam-2', 'cam-3'];
    const watcher = new FleetWatcher();
    await watcher.start(broker.url, 'crash');
    const first = runFleet([file, '--url', broker.url, '--workers', '2', '--state-dir', stateDir, '--interval', '1']);
    procs.push(first.proc);
    await until('5 results from every device', () => (ids.every((id) => watcher.count(id) >= 5) ? true : undefined), 150_000, first.log);
    first.proc.kill('SIGKILL');
    expect((await first.exit).code).toBe(null);
    // The broker publishes each device's will: lost.
    await until('every device offline by its will', () => (ids.every((id) => watcher.lastState(id) === 'offline') ? true : undefined), 60_000,
      () => ids.map((id) => `${id}: ${JSON.stringify(watcher.statuses.get(id)?.at(-1))}`).join('\n'));
    for (const id of ids) expect(watcher.statuses.get(id)!.at(-1), id).toMatchObject({ state: 'offline', reason: 'connection lost' });
    const before = new Map(ids.map((id) => [id, Math.max(...watcher.results.get(id)!)]));

    const second = runFleet([file, '--url', broker.url, '--workers', '2', '--state-dir', stateDir, '--interval', '1']);
    procs.push(second.proc);
    try {
      // Recovered: online again under a new session, and producing past where it was killed.
      await until('every device back and 5 results further', () => (ids.every((id) => watcher.lastState(id) === 'online' && Math.max(...watcher.results.get(id)!) >= before.get(id)! + 5) ? true : undefined), 150_000, second.log);
    } finally {
      second.proc.kill('SIGTERM');
    }
    expect((await second.exit).code, second.log()).toBe(0);
    await watcher.stop();
    for (const id of ids) {
      expect(watcher.sessions.get(id)!.size, id).toBe(2);
      const seen = new Set(watcher.results.get(id));
      const max = Math.max(...seen);
      // Every number from 0 to the last is there: the outbox replayed what the broker had not acknowledged.
      const missing = Array.from({ length: max + 1 }, (_, n) => n).filter((n) => !seen.has(n));
      expect(missing, id).toEqual([]);
    }
  }, 360_000);
});

describeMosquitto('edgerun fleet devices: one worker thread dies mid-run (not the process)', () => {
  let broker: Mosquitto;
  let dir: string;
  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    dir = mkdtempSync(join(tmpdir(), 'edgerun-fleet-thread-'));
  });
  afterAll(async () => {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('its devices are reported lost, come back when the host restarts the thread, and no result number is missing; the other thread\'s devices go on', async () => {
    const file = join(dir, 'thread.json');
    writeFileSync(file, JSON.stringify({ fleet: 'thread', groups: [{ name: 'cam', count: 4, rateHz: 5, seed: 7 }] }));
    const ids = ['cam-0', 'cam-1', 'cam-2', 'cam-3'];
    const crashed = ['cam-0', 'cam-2']; // round robin over 2 threads: worker 0 holds cam-0 and cam-2
    const watcher = new FleetWatcher();
    await watcher.start(broker.url, 'thread');
    // The failpoint throws an uncaught error in worker 0, 4 s after its devices started (its first life only).
    const p = startEdgerun(['fleet', 'devices', file, '--url', broker.url, '--workers', '2', '--state-dir', join(dir, 'state'), '--interval', '1'], { FAILPOINT_EDGERUN_FLEET_THREAD: '0:4000' }, 1 << 20);
    try {
      await until('worker 0 restarted', () => (p.log().includes('worker 0 died') ? true : undefined), 150_000, p.log);
      const before = new Map(crashed.map((id) => [id, Math.max(...(watcher.results.get(id) ?? [0]))]));
      await until('its devices back and 5 results further', () => (crashed.every((id) => watcher.lastState(id) === 'online' && watcher.sessions.get(id)?.size === 2 && Math.max(...watcher.results.get(id)!) >= before.get(id)! + 5) ? true : undefined), 150_000, p.log);
    } finally {
      p.proc.kill('SIGINT');
    }
    const { code } = await p.exit;
    await watcher.stop();
    expect(code, p.log()).toBe(0);
    const log = p.log();
    expect(log).toMatch(/worker 0 died \(code 1\) under 2 device\(s\); starting it again/);
    for (const id of crashed) expect(log).toContain(`device ${id} recovered`);
    expect(log).toMatch(/2 device\(s\) lost with their worker thread: cam-0 \(recovered\), cam-2 \(recovered\)/);
    for (const id of ids) {
      const statuses = watcher.statuses.get(id)!.map((s) => s.state);
      // The crashed thread's devices: offline by their wills (the thread's sockets closed), then online again in a new session.
      if (crashed.includes(id)) {
        expect(watcher.statuses.get(id)!.some((s) => s.state === 'offline' && s.reason === 'connection lost'), id).toBe(true);
        expect(watcher.sessions.get(id)!.size, id).toBe(2);
      } else {
        expect(statuses.filter((s) => s === 'offline'), id).toHaveLength(1); // its own goodbye at the end only
        expect(watcher.sessions.get(id)!.size, id).toBe(1);
      }
      const seen = new Set(watcher.results.get(id));
      const max = Math.max(...seen);
      expect(Array.from({ length: max + 1 }, (_, n) => n).filter((n) => !seen.has(n)), id).toEqual([]);
    }
  }, 360_000);
});

describe('edgerun fleet devices refuses bad fleet files with one line, exit 2, nothing started', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'edgerun-fleet-bad-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const cases: [string, string, string, RegExp][] = [
    ['unknown key', 'bad1.yaml', 'fleet: f\ngroups:\n  - name: a\n    count: 2\n    colour: red\n', /groups\.0: Unrecognized key: "colour"/],
    ['negative count', 'bad2.yaml', 'groups:\n  - name: a\n    count: -3\n', /groups\.0\.count: Too small/i],
    ['too many devices', 'bad3.json', JSON.stringify({ generate: { devices: 10_000_000 } }), /generate\.devices: Too big/i],
    ['groups and generate', 'bad4.yaml', 'groups:\n  - name: a\n    count: 1\ngenerate: { devices: 3 }\n', /give either groups or generate/],
    ['bad age', 'bad5.yaml', 'groups:\n  - name: a\n    count: 1\n    age: 3 fortnights\n', /groups\.0\.age: bad age '3 fortnights'/],
    ['not YAML', 'bad6.yaml', 'groups: [\n  {name: a,\n', /not a readable fleet file/],
    ['duplicate group', 'bad7.yaml', 'groups:\n  - { name: a, count: 1 }\n  - { name: a, count: 2 }\n', /group 'a' appears twice/],
    ['missing model', 'bad8.yaml', 'groups:\n  - { name: a, count: 1, models: [nowhere.onnx] }\n', /nowhere\.onnx/],
    ['unknown profile', 'bad9.yaml', 'groups:\n  - { name: a, count: 1, profile: quantum }\n', /unknown device profile 'quantum'/],
    ['one model twice', 'bad10.yaml', `groups:\n  - { name: a, count: 1, models: [mlp, ${join(repoRoot, 'models/mlp.onnx')}] }\n`, /group 'a': two models named 'mlp'/],
  ];
  it.each(cases)('%s', async (_what, name, text, message) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const state = join(dir, `state-${name}`);
    // An unreachable port: were anything to start, it would not get far, and the state dir would exist.
    const r = await edgerun(['fleet', 'devices', file, '--url', 'mqtt://127.0.0.1:1', '--state-dir', state, '--seconds', '30']);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(existsSync(state)).toBe(false);
  }, 60_000);
});
