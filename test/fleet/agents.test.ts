import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { agentReportTopic, encodeScenario, scenarioTopic } from '../../runtime/fleet/fleet-protocol.js';
import type { FleetReport } from '../../runtime/fleet/report.js';
import { encodeKeyFile, generateKeyPair, TrustStore } from '../../runtime/telemetry/keys.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { edgerun, startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

/** 6 devices (two groups of 3), MLP on pcm, 4 inferences/s each. */
const FLEET = `fleet: lab
groups:
  - { name: a, count: 3, profile: pcm, models: [mlp], rateHz: 4, seed: 10 }
  - { name: b, count: 3, profile: pcm, models: [mlp], rateHz: 4, seed: 20 }
`;

describe('fleet agent and fleet bench: bad input', () => {
  it('exit 2 with one line and nothing created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-agents-bad-'));
    try {
      writeFileSync(join(dir, 'bad.yaml'), 'fleet: x\ngroups:\n  - { name: a, count: -1 }\n');
      writeFileSync(join(dir, 'ok.yaml'), FLEET);
      const cases: [string[], RegExp][] = [
        [['fleet', 'agent', '--fleet', 'a/b', '--url', 'mqtt://127.0.0.1:1', '--state-dir', join(dir, 'state')], /invalid fleet "a\/b"/],
        [['fleet', 'agent', '--fleet', 'lab', '--id', '$x', '--url', 'mqtt://127.0.0.1:1', '--state-dir', join(dir, 'state')], /invalid agent id "\$x"/],
        [['fleet', 'bench', '--devices', join(dir, 'bad.yaml')], /bad\.yaml: groups\.0\.count/],
        [['fleet', 'bench', '--devices', join(dir, 'missing.yaml')], /fleet file not found/],
        [['fleet', 'bench', '--devices', join(dir, 'ok.yaml'), '--key', join(dir, 'ok.yaml')], /key file .*not valid JSON/],
        [['fleet', 'bench', '--devices', join(dir, 'ok.yaml'), '--agents', '0'], /--agents/],
      ];
      for (const [args, message] of cases) {
        const r = await edgerun(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
        expect(r.stderr).toMatch(message);
      }
      expect(existsSync(join(dir, 'state'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describeMosquitto('fleet agents over one Mosquitto: split, merged report, a killed agent, refused scenarios', () => {
  let broker: Mosquitto;
  let dir: string;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    dir = mkdtempSync(join(tmpdir(), 'edgerun-agents-'));
    writeFileSync(join(dir, 'fleet.yaml'), FLEET);
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[]): EdgerunProcess => {
    const p = startEdgerun(args, {}, 1 << 20);
    procs.push(p.proc);
    return p;
  };
  const agent = (id: string, extra: string[] = []) => {
    const a = run(['fleet', 'agent', '--url', broker.url, '--fleet', 'lab', '--id', id, '--workers', '1', '--state-dir', join(dir, id), ...extra]);
    return a;
  };
  const bench = (out: string, extra: string[]) => run(['fleet', 'bench', '--devices', join(dir, 'fleet.yaml'), '--url', broker.url, '--out', out, '--consumers', '2', '--wait-agents', '60', '--grace', '60', '--no-progress', ...extra]);
  const ids = ['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2'];
  let a1: ReturnType<typeof agent>, a2: ReturnType<typeof agent>;

  it('two agents split the fleet (disjoint shares, union = fleet) and the report merges them: every device counted, 0 lost', async () => {
    a1 = agent('a1');
    a2 = agent('a2');
    const out = join(dir, 'two.json');
    const b = bench(out, ['--agents', '2', '--duration', '6', '--html', join(dir, 'two.html')]);
    expect((await b.exit).code, b.log()).toBe(0);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const [x, y] = r.agents!;
    expect(r.agents!.map((a) => [a.agent, a.state])).toEqual([['a1', 'done'], ['a2', 'done']]);
    expect(x!.devices.filter((d) => y!.devices.includes(d))).toEqual([]);
    expect([...x!.devices, ...y!.devices].sort()).toEqual(ids);
    expect(x!.devices.length).toBe(3); // equal workers, equal shares
    const m = r.metrics!;
    expect(Object.keys(m.devices).sort()).toEqual(ids);
    for (const d of ids) expect(m.devices[d]!.results, d).toBeGreaterThan(0);
    for (const a of r.agents!) {
      expect(a.silent).toEqual([]);
      expect(a.unreceived).toBe(0); // every result each device says it produced reached a consumer
      expect(a.figures).toMatchObject({ lost: 0, duplicated: 0 });
      expect(a.figures.results).toBe(a.devices.reduce((n, d) => n + m.devices[d]!.results, 0));
    }
    expect(m.fleet.results).toBe(x!.figures.results + y!.figures.results);
    expect(m.fleet.latency.count).toBe(m.fleet.results);
    expect(m.fleet).toMatchObject({ lost: 0, duplicated: 0 });
    expect(b.log()).toMatch(/fleet\s+done\s+6\s+\d+/);
    expect(await readFile(join(dir, 'two.html'), 'utf8')).toMatch(/<table class="agents">/);
  }, 240_000);

  it('an agent killed (SIGKILL) mid-run is reported lost with its devices; the other agent\'s devices complete with 0 lost', async () => {
    const watcher = mqtt.connect(broker.url, { clientId: 'kill-watcher', reconnectPeriod: 0 });
    const heard = new Set<string>();
    watcher.on('message', (topic) => heard.add(topic.split('/')[2]!));
    await watcher.subscribeAsync('edgerun/lab/+/results', { qos: 0 });
    const out = join(dir, 'kill.json');
    const b = bench(out, ['--agents', '2', '--duration', '25', '--html', join(dir, 'kill.html')]);
    // a2 runs b-0..b-2: killed once they have all sent results
    await until('a2\'s devices reporting', () => (['b-0', 'b-1', 'b-2'].every((d) => heard.has(d)) ? true : undefined), 120_000, b.log);
    a2.proc.kill('SIGKILL');
    expect((await b.exit).code, b.log()).toBe(1); // the run is incomplete
    await watcher.endAsync();
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const lost = r.agents!.find((a) => a.agent === 'a2')!, kept = r.agents!.find((a) => a.agent === 'a1')!;
    expect(lost).toMatchObject({ state: 'lost', devices: ['b-0', 'b-1', 'b-2'] });
    expect(lost.detail).toMatch(/offline/);
    expect(b.log()).toMatch(/agent a2 lost .*its devices: b-0, b-1, b-2/);
    expect(kept).toMatchObject({ state: 'done', silent: [], unreceived: 0 });
    expect(kept.figures).toMatchObject({ lost: 0, duplicated: 0 });
    for (const d of kept.devices) expect(r.metrics!.devices[d]).toMatchObject({ lost: 0 });
    // what a2's devices sent before the kill is in the report too, as theirs
    expect(lost.figures.results).toBeGreaterThan(0);
    expect(await readFile(join(dir, 'kill.html'), 'utf8')).toMatch(/its devices: b-0, b-1, b-2/);
  }, 240_000);

  it('an agent with a trust store refuses unsigned and forged scenarios, and runs a signed one', async () => {
    const operator = generateKeyPair();
    writeFileSync(join(dir, 'operator.key'), encodeKeyFile(operator, 'operator'), { mode: 0o600 });
    const keyDir = join(dir, 'a3-keys');
    await (await TrustStore.open(new FsStorage(keyDir, 0o600))).add('operator', operator.publicKey);
    const a3 = agent('a3', ['--key-dir', keyDir]);
    await until('a3 up', () => (a3.log().includes('scenarios signed by operator only') ? true : undefined), 60_000, a3.log);
    a1.proc.kill('SIGINT'); // only a3 is idle now
    expect((await a1.exit).code).toBe(0);

    const refusals: string[] = [];
    const watcher = mqtt.connect(broker.url, { clientId: 'trust-watcher', reconnectPeriod: 0 });
    watcher.on('message', (_t, payload) => refusals.push((JSON.parse(payload.toString()) as { body: { type: string; reason?: string } }).body.reason ?? ''));
    await watcher.subscribeAsync(agentReportTopic('edgerun', 'lab', 'a3'), { qos: 1 });
    const unsigned = bench(join(dir, 'unsigned.json'), ['--agents', '1', '--duration', '3']);
    expect((await unsigned.exit).code, unsigned.log()).toBe(1);
    expect(unsigned.log()).toMatch(/agent a3 refused \(unsigned/);
    // a forged one: signed by the operator, then altered
    const s = { run: 'forged', nonce: 'nonce-forged-1', devices: [{ id: 'x-0', group: 'x', profile: 'pcm', seed: 0, ageS: 0, models: ['mlp'], rateHz: 1, sign: false }], shares: [{ agent: 'a3', from: 0, to: 1 }], durationS: 5, startTimeoutS: 60 };
    const forged = encodeScenario(s, { sender: 'mallory', signer: operator });
    forged[new TextDecoder().decode(forged).indexOf('durationS') + 13] = '9'.charCodeAt(0);
    await watcher.publishAsync(scenarioTopic('edgerun', 'lab', 'forged'), Buffer.from(forged), { qos: 1 });
    await until('forged refused', () => (refusals.includes('forged-signature') ? true : undefined), 30_000);
    expect(a3.log()).not.toMatch(/run forged: starting/);

    const signed = bench(join(dir, 'signed.json'), ['--agents', '1', '--duration', '3', '--key', join(dir, 'operator.key')]);
    expect((await signed.exit).code, signed.log()).toBe(0);
    const r = JSON.parse(await readFile(join(dir, 'signed.json'), 'utf8')) as FleetReport;
    expect(r.agents!.map((a) => [a.agent, a.state, a.devices.length])).toEqual([['a3', 'done', 6]]);
    await watcher.endAsync();
    a3.proc.kill('SIGINT');
    expect((await a3.exit).code).toBe(0);
  }, 240_000);
});
