/**
 * A Server search over two real `fleet agent` processes and one real Mosquitto: the search's runs
 * (one per rate) are one session, so each device is born once for the whole search; each agent's
 * load generator hears only its own devices (every result received once across the agents); the
 * agents remove the session's state once it ended cleanly.
 */
import { beforeAll, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { FleetReport } from '../../runtime/fleet/report.js';
import { describeMosquitto } from '../helpers/mosquitto.js';
import { brokerStage } from '../helpers/broker-stage.js';
import { until } from '../helpers/until.js';

/** 4 devices with a fixed 100 ms service time: the fleet serves up to 40 QPS. */
const FLEET = `fleet: sess
groups:
  - { name: d, count: 4, profile: pcm, models: [mlp], seed: 3, serviceTime: { distribution: fixed, meanMs: 100 } }
`;

describeMosquitto('a Server search over two agents: one session', () => {
  const stage = brokerStage('edgerun-session-');
  beforeAll(() => {
    writeFileSync(join(stage.dir, 'fleet.yaml'), FLEET);
  });

  it('devices born once for every rate tried, each result received by one agent, the session\'s state removed at its end', async () => {
    // A device's session is one start of it (envelope.ts): the sessions its births name, per device.
    const sessions = new Map<string, Set<string>>();
    const watcher = mqtt.connect(stage.broker.url, { clientId: 'birth-watcher', reconnectPeriod: 0 });
    watcher.on('message', (topic, payload, packet) => {
      if (packet.retain) return;
      const m = JSON.parse(payload.toString()) as { session: string; body: { state?: string } };
      const device = topic.split('/')[2]!;
      if (m.body.state === 'online') sessions.set(device, (sessions.get(device) ?? new Set()).add(m.session));
    });
    await watcher.subscribeAsync('edgerun/sess/+/status', { qos: 1 });
    const agents = ['a1', 'a2'].map((id) => stage.start(['fleet', 'agent', '--url', stage.broker.url, '--fleet', 'sess', '--id', id, '--workers', '1', '--state-dir', join(stage.dir, id)]));
    const out = join(stage.dir, 'search.json');
    const bench = stage.start(['fleet', 'bench', '--devices', join(stage.dir, 'fleet.yaml'), '--url', stage.broker.url, '--agents', '2', '--out', out, '--consumers', '1', '--wait-agents', '120', '--no-progress',
      '--run', 'search1', '--scenario', 'server', '--p99-bound', '400', '--start-qps', '8', '--quick', '--min-duration', '2', '--min-queries', '16']);
    const { code } = await bench.exit;
    expect(code, bench.log()).toBe(0);
    const report = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const f = report.fleetScenario!;
    expect(f.search!.tried.length, JSON.stringify(f.search)).toBeGreaterThanOrEqual(3);
    expect(f.search!.bracketed).toBe(true);
    // Each device started once for the whole search (before: once per rate tried).
    expect([...sessions].map(([d, s]) => [d, s.size]).sort()).toEqual([['d-0', 1], ['d-1', 1], ['d-2', 1], ['d-3', 1]]);
    for (const a of agents) expect(a.log().match(/starting 2 device\(s\)/g) ?? [], a.log()).toHaveLength(1);
    // Each result reached one agent's load generator: together they received every sample's result once (before: twice).
    expect(f.queries).toMatchObject({ completed: f.queries.issued, lost: 0, duplicated: 0, unknown: 0 });
    expect(f.resultsReceived).toBe(f.queries.samples);
    // The stop marker ends the session: its devices stop, its state goes.
    await until('session state removed', () => (['a1', 'a2'].every((id) => !existsSync(join(stage.dir, id, 'search1'))) ? true : undefined), 60_000, () => agents.map((a) => a.log()).join('\n'));
    for (const a of agents) expect(a.log()).toMatch(/session search1: stopping its devices \(its session ended\)/);
    // …and each device said goodbye once the search was over.
    await watcher.endAsync();
    for (const a of agents) a.proc.kill('SIGINT');
    for (const a of agents) expect((await a.exit).code).toBe(0);
  }, 400_000);

  it('SIGINT to fleet bench mid-run: the agent ends its run and reports, the report holds what was measured (partial), exit 130', async () => {
    writeFileSync(join(stage.dir, 'long.yaml'), 'fleet: sess\ngroups:\n  - { name: l, count: 2, profile: pcm, models: [mlp], rateHz: 4, seed: 9 }\n');
    let results = 0;
    const watcher = mqtt.connect(stage.broker.url, { clientId: 'abort-watcher', reconnectPeriod: 0 });
    watcher.on('message', () => { results++; });
    await watcher.subscribeAsync('edgerun/sess/+/results', { qos: 1 });
    const agent = stage.start(['fleet', 'agent', '--url', stage.broker.url, '--fleet', 'sess', '--id', 'a3', '--workers', '1', '--state-dir', join(stage.dir, 'a3')]);
    const out = join(stage.dir, 'abort.json');
    const bench = stage.start(['fleet', 'bench', '--devices', join(stage.dir, 'long.yaml'), '--url', stage.broker.url, '--agents', '1', '--duration', '600', '--out', out, '--html', join(stage.dir, 'abort.html'),
      '--consumers', '1', '--wait-agents', '120', '--no-progress', '--run', 'abort1']);
    await until('results flowing', () => (results >= 10 ? true : undefined), 120_000, bench.log);
    bench.proc.kill('SIGINT');
    const { code } = await bench.exit;
    await watcher.endAsync();
    expect(code, bench.log()).toBe(130);
    expect(agent.log()).toMatch(/run abort1: ended early by the coordinator/);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    expect(r.interrupted).toMatchObject({ signal: 'SIGINT' });
    expect(r.agents!.map((a) => [a.agent, a.state])).toEqual([['a3', 'done']]);
    expect(r.agents![0]!.unreceived).toBe(0);
    expect(r.metrics!.fleet.results).toBeGreaterThanOrEqual(10);
    expect(r.metrics!.fleet.lost).toBe(0);
    expect(await readFile(join(stage.dir, 'abort.html'), 'utf8')).toMatch(/Partial: interrupted by SIGINT/);
    agent.proc.kill('SIGINT');
    expect((await agent.exit).code).toBe(0);
  }, 300_000);
});
