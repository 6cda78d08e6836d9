/**
 * Signed agents over a real Mosquitto: `fleet bench --agent-keys` takes only agents whose statuses
 * and reports verify against a trusted key. An unsigned agent is refused; a forged report (signed,
 * then altered) and a replayed one (a real signed status published again) change nothing.
 */
import { beforeAll, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { agentReportTopic, agentStatusTopic, encodeFleetMessage } from '../../runtime/fleet/fleet-protocol.js';
import type { FleetReport } from '../../runtime/fleet/report.js';
import { encodeKeyFile, generateKeyPair, TrustStore } from '../../runtime/telemetry/keys.js';
import { describeMosquitto } from '../helpers/mosquitto.js';
import { brokerStage } from '../helpers/broker-stage.js';
import { until } from '../helpers/until.js';

const FLEET = 'fleet: sig\ngroups:\n  - { name: s, count: 2, profile: pcm, models: [mlp], rateHz: 2, seed: 1 }\n';

describeMosquitto('fleet bench --agent-keys: signed agents only', () => {
  const stage = brokerStage('edgerun-agent-sig-');
  beforeAll(() => {
    writeFileSync(join(stage.dir, 'fleet.yaml'), FLEET);
  });

  it('an unsigned agent is refused; forged and replayed agent messages change nothing; the signed agent\'s run completes', async () => {
    const good = generateKeyPair();
    writeFileSync(join(stage.dir, 'good.key'), encodeKeyFile(good, 'good'), { mode: 0o600 });
    const trustDir = join(stage.dir, 'agent-keys');
    await (await TrustStore.open(new FsStorage(trustDir, 0o600))).add('good', good.publicKey);
    // The good agent's first signed status, kept to be replayed later.
    const statuses: Buffer[] = [];
    const spy = mqtt.connect(stage.broker.url, { clientId: 'sig-spy', reconnectPeriod: 0 });
    spy.on('message', (topic, payload, packet) => { if (!packet.retain && topic === agentStatusTopic('edgerun', 'sig', 'good')) statuses.push(Buffer.from(payload)); });
    await spy.subscribeAsync(agentStatusTopic('edgerun', 'sig', 'good'), { qos: 1 });
    const goodAgent = stage.start(['fleet', 'agent', '--url', stage.broker.url, '--fleet', 'sig', '--id', 'good', '--workers', '1', '--state-dir', join(stage.dir, 'good'), '--key', join(stage.dir, 'good.key')]);
    const plain = stage.start(['fleet', 'agent', '--url', stage.broker.url, '--fleet', 'sig', '--id', 'plain', '--workers', '1', '--state-dir', join(stage.dir, 'plain')]);
    await until('both agents up', () => (goodAgent.log().includes('its messages signed') && plain.log().includes('its messages unsigned') && statuses.length ? true : undefined), 60_000);

    // Two agents wanted, one trusted: the unsigned one never counts.
    const two = stage.start(['fleet', 'bench', '--devices', join(stage.dir, 'fleet.yaml'), '--url', stage.broker.url, '--agents', '2', '--wait-agents', '8', '--consumers', '1', '--no-progress',
      '--agent-keys', trustDir, '--out', join(stage.dir, 'two.json')]);
    expect((await two.exit).code, two.log()).not.toBe(0);
    expect(two.log()).toMatch(/agent plain: message refused \(unsigned, and this coordinator takes signed agents only\)/);
    expect(two.log()).toMatch(/1 of 2 agent\(s\) ready .*\(good\)/);

    // One agent: the good one runs; meanwhile a forged "failed" report and a replay of its first status.
    const out = join(stage.dir, 'one.json');
    const one = stage.start(['fleet', 'bench', '--devices', join(stage.dir, 'fleet.yaml'), '--url', stage.broker.url, '--agents', '1', '--duration', '6', '--wait-agents', '60', '--consumers', '1', '--no-progress',
      '--agent-keys', trustDir, '--run', 'sig1', '--out', out]);
    await until('the run started', () => (goodAgent.log().includes('run sig1: starting') ? true : undefined), 120_000, one.log);
    const forged = encodeFleetMessage('good', Date.now() + 1e6, 'agent-report', { type: 'failed', run: 'sig1', error: 'forged' }, good);
    forged[new TextDecoder().decode(forged).indexOf('forged') + 1] = 'X'.charCodeAt(0);
    await spy.publishAsync(agentReportTopic('edgerun', 'sig', 'good'), Buffer.from(forged), { qos: 1 });
    const mallory = generateKeyPair();
    await spy.publishAsync(agentReportTopic('edgerun', 'sig', 'good'), Buffer.from(encodeFleetMessage('good', Date.now() + 2e6, 'agent-report', { type: 'failed', run: 'sig1', error: 'untrusted' }, mallory)), { qos: 1 });
    await spy.publishAsync(agentStatusTopic('edgerun', 'sig', 'good'), statuses[0]!, { qos: 1 });
    expect((await one.exit).code, one.log()).toBe(0);
    const log = one.log();
    expect(log).toMatch(/agent good: message refused \(forged signature\)/);
    expect(log).toMatch(/agent good: message refused \(signed by [0-9a-f:]+, not a trusted key\)/i);
    expect(log).toMatch(/agent good: message refused \(replayed: seq \d+ not above \d+\)/);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    expect(r.agents!.map((a) => [a.agent, a.state, a.devices.length])).toEqual([['good', 'done', 2]]);
    await spy.endAsync();
    for (const a of [goodAgent, plain]) a.proc.kill('SIGINT');
    for (const a of [goodAgent, plain]) expect((await a.exit).code).toBe(0);
  }, 300_000);
});
