import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { checkScenario, encodeScenario, parseAgentTopic, scenarioTopic, agentStatusTopic, shareOf, splitFleet, type Scenario, type ScenarioDevice } from '../../runtime/fleet/fleet-protocol.js';
import { ReplayMemory } from '../../runtime/telemetry/commands.js';
import { generateKeyPair, TrustStore } from '../../runtime/telemetry/keys.js';
import { fleetFilter } from '../../runtime/telemetry/topics.js';

const device = (i: number): ScenarioDevice => ({ id: `d-${i}`, group: 'g', profile: 'pcm', seed: i, ageS: 0, models: ['mlp'], rateHz: 1, sign: false });

describe('splitFleet', () => {
  it('gives contiguous shares in agent-id order, disjoint, covering the fleet, in proportion to workers within one device', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 500 }), fc.uniqueArray(fc.record({ id: fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), workers: fc.integer({ min: 1, max: 8 }) }), { minLength: 1, maxLength: 6, selector: (a) => a.id }), (n, agents) => {
      const shares = splitFleet(n, agents);
      expect(shares.map((s) => s.agent)).toEqual(agents.map((a) => a.id).sort((a, b) => a.localeCompare(b)));
      let next = 0;
      for (const s of shares) {
        expect(s.from).toBe(next);
        next = s.to;
        const workers = agents.find((a) => a.id === s.agent)!.workers;
        const fair = (n * workers) / agents.reduce((t, a) => t + a.workers, 0);
        expect(Math.abs(s.to - s.from - fair)).toBeLessThan(1);
      }
      expect(next).toBe(n);
      // the same input, reordered, splits the same way
      expect(splitFleet(n, [...agents].reverse())).toEqual(shares);
    }));
  });

  it('refuses to split among no agent', () => {
    expect(() => splitFleet(3, [])).toThrow(/no agent/);
  });
});

describe('fleet topics', () => {
  it('stay out of the device filters and parse back', () => {
    const deviceLevel = new RegExp(`^${fleetFilter('edgerun', 'lab', '+').replace(/\+/g, '[^/]+').replace(/\$/g, '\\$')}$`);
    expect(deviceLevel.test('edgerun/lab/dev-1/results')).toBe(true);
    expect(deviceLevel.test(scenarioTopic('edgerun', 'lab', 'r1'))).toBe(false);
    expect(deviceLevel.test(agentStatusTopic('edgerun', 'lab', 'status'))).toBe(false);
    expect(parseAgentTopic('edgerun', 'lab', 'edgerun/lab/$agents/a1/report')).toEqual({ agent: 'a1', kind: 'report' });
    expect(parseAgentTopic('edgerun', 'lab', 'edgerun/lab/$agents/a1/other')).toBeUndefined();
    expect(() => scenarioTopic('edgerun', 'lab', 'r/1')).toThrow(/invalid run id/);
  });
});

describe('checkScenario', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-scenario-'));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const operator = generateKeyPair();
  const stranger = generateKeyPair();
  const scenario = (run: string, nonce = `nonce-for-${run}`): Scenario => ({ run, nonce, devices: [0, 1, 2, 3, 4].map(device), shares: [{ agent: 'a1', from: 0, to: 2 }, { agent: 'a2', from: 2, to: 5 }], durationS: 10, startTimeoutS: 60 });
  const now = 1_800_000_000_000;
  const clock = { now: () => now };

  it('without a trust store: any well-formed scenario, signed or not; the shares say who runs what', async () => {
    const v = await checkScenario(encodeScenario(scenario('r0'), { sender: 'bench', ts: now }), { clock });
    expect(v.ok).toBe(true);
    if (v.ok) expect(shareOf(v.scenario, 'a2').map((d) => d.id)).toEqual(['d-2', 'd-3', 'd-4']);
  });

  it('refuses shares that overlap, leave devices out, or device specs of the wrong shape', async () => {
    const gap = { ...scenario('r1'), shares: [{ agent: 'a1', from: 0, to: 2 }, { agent: 'a2', from: 3, to: 5 }] };
    const bad = { ...scenario('r2'), devices: [{ ...device(0), models: [] }, ...[1, 2, 3, 4].map(device)] };
    for (const s of [gap, bad]) {
      const payload = new TextEncoder().encode(JSON.stringify({ device: 'bench', seq: 1, ts: now, kind: 'fleet-scenario', body: s }));
      expect(await checkScenario(payload, { clock })).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });

  it('with a trust store: unsigned, forged, unknown signers, stale and replayed scenarios are refused; a fresh trusted one runs once', async () => {
    const keys = new FsStorage(dir, 0o600);
    const trust = await TrustStore.open(keys);
    await trust.add('operator', operator.publicKey);
    const replay = await ReplayMemory.open(keys, 'scenario-replay.json');
    const o = { clock, trust, replay };
    expect(await checkScenario(encodeScenario(scenario('u'), { sender: 'bench', ts: now }), o)).toMatchObject({ ok: false, reason: 'unsigned' });
    const forged = encodeScenario(scenario('f'), { sender: 'bench', signer: operator, ts: now });
    const at = new TextDecoder().decode(forged).indexOf('durationS');
    forged[at + 13] = '9'.charCodeAt(0); // durationS 10 → 90 inside the signed text (escaped quotes: durationS\":10)
    expect(await checkScenario(forged, o)).toMatchObject({ ok: false, reason: 'forged-signature' });
    expect(await checkScenario(encodeScenario(scenario('k'), { sender: 'bench', signer: stranger, ts: now }), o)).toMatchObject({ ok: false, reason: 'unknown-key' });
    expect(await checkScenario(encodeScenario(scenario('s'), { sender: 'bench', signer: operator, ts: now - 10 * 60_000 }), o)).toMatchObject({ ok: false, reason: 'stale' });
    const good = encodeScenario(scenario('g'), { sender: 'bench', signer: operator, ts: now });
    expect(await checkScenario(good, o)).toMatchObject({ ok: true, signer: { name: 'operator' } });
    expect(await checkScenario(good, o)).toMatchObject({ ok: false, reason: 'replayed' });
    // the replay memory is on disk: a restarted agent refuses it too
    const again = await ReplayMemory.open(new FsStorage(dir, 0o600), 'scenario-replay.json');
    expect(await checkScenario(good, { ...o, replay: again })).toMatchObject({ ok: false, reason: 'replayed' });
  });
});
