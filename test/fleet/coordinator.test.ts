import { afterAll, beforeAll, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FleetAgent, type RunningShare, type ShareHost } from '../../runtime/fleet/agent.js';
import { FleetCoordinator } from '../../runtime/fleet/coordinator.js';
import { agentStatusTopic, encodeFleetMessage, type AgentReport, type ScenarioDevice } from '../../runtime/fleet/fleet-protocol.js';
import { realTimeline } from '../../runtime/fleet/timeline.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

const devices: ScenarioDevice[] = [0, 1, 2, 3].map((i) => ({ id: `d-${i}`, group: 'g', profile: 'pcm', seed: i, ageS: 0, models: ['mlp'], rateHz: 1, sign: false }));

/** A share whose devices never all come up (a broker they cannot reach), or come up at once; counts its stops. */
function share(up: boolean): ShareHost & { stops: number } {
  const host = {
    stops: 0,
    start(): RunningShare {
      return {
        started: up ? Promise.resolve() : new Promise(() => undefined),
        online: () => (up ? 2 : 0),
        stop: async () => { host.stops++; return { produced: {} }; },
        runLoad: () => Promise.reject(new Error('these failure paths run no LoadGen scenario')),
      };
    },
  };
  return host;
}

describeMosquitto('fleet coordinator and agents over a real Mosquitto: failure paths', () => {
  let broker: Mosquitto;
  const clients: MqttClient[] = [];
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); });
  afterAll(async () => {
    for (const c of clients) await c.end({ force: true });
    await broker.stop();
  });
  const client = (id: string): MqttClient => {
    const c = new MqttClient({ url: broker.url, clientId: id, protocolVersion: 5, clean: true, reconnect: { initialMs: 100, maxMs: 500 } });
    clients.push(c);
    return c;
  };
  const agent = (id: string, host: ShareHost): FleetAgent => {
    const a = new FleetAgent({ mqtt: client(id), prefix: 'edgerun', fleet: 'lab', id, capacity: { workers: 1, cpus: 1 }, host, check: { clock: { now: () => Date.now() } }, timeline: realTimeline, progressIntervalMs: 200, log: () => undefined });
    a.start();
    return a;
  };
  const coordinator = async (onReport?: (agent: string, r: AgentReport) => void): Promise<FleetCoordinator> => {
    const m = client(`coordinator-${Math.random()}`);
    const c = new FleetCoordinator({ mqtt: m, prefix: 'edgerun', fleet: 'lab', id: 'bench', timeline: realTimeline, log: () => undefined, ...(onReport ? { onReport } : {}) });
    m.connect();
    await c.start();
    return c;
  };

  it('an agent whose devices do not come up in time fails its run (its share stopped); a silent agent is lost; the other completes', async () => {
    const hung = share(false), fine = share(true);
    const agents = [agent('p1', hung), agent('p2', fine)];
    // a foreign or broken agent: says it is idle, then never says anything again
    const mute = await mqtt.connectAsync(broker.url, { clientId: 'mute', protocolVersion: 5 });
    await mute.publishAsync(agentStatusTopic('edgerun', 'lab', 'p3'), Buffer.from(encodeFleetMessage('p3', 1, 'agent-status', { state: 'idle', capacity: { workers: 1, cpus: 1 } })), { qos: 1, retain: true });
    const c = await coordinator();
    const ready = await c.waitForAgents(3, 30_000);
    expect(ready.map((a) => a.id)).toEqual(['p1', 'p2', 'p3']);
    const { scenario, outcomes } = await c.run({ run: 'r1', devices: [...devices, ...devices.map((d) => ({ ...d, id: `e-${d.id}` }))], agents: ready, durationS: 1, startTimeoutS: 1, graceS: 3 });
    expect(scenario.shares.map((s) => s.to - s.from)).toEqual([3, 3, 2]);
    const by = Object.fromEntries(outcomes.map((o) => [o.agent, o]));
    expect(by.p1).toMatchObject({ state: 'failed', detail: '0 of 3 device(s) up after 1 s' });
    expect(hung.stops).toBe(1);
    expect(by.p2).toMatchObject({ state: 'done', devices: ['d-3', 'e-d-0', 'e-d-1'] });
    expect(fine.stops).toBe(1);
    expect(by.p3).toMatchObject({ state: 'lost', detail: 'silent for 3 s', devices: ['e-d-2', 'e-d-3'] });
    await mute.publishAsync(agentStatusTopic('edgerun', 'lab', 'p3'), Buffer.alloc(0), { qos: 1, retain: true });
    await mute.endAsync();
    await Promise.all(agents.map((a) => a.stop()));
  }, 60_000);

  it('an agent stopped in the middle of a run reports it failed, not done', async () => {
    const host = share(true);
    const a = agent('q1', host);
    let started = false;
    const c = await coordinator((_, r) => { if (r.type === 'started') started = true; });
    const ready = await c.waitForAgents(1, 30_000);
    const run = c.run({ run: 'r2', devices, agents: ready, durationS: 60, startTimeoutS: 10, graceS: 10 });
    await until('the run under way', () => (started ? true : undefined), 30_000);
    await a.stop();
    const { outcomes } = await run;
    expect(outcomes[0]).toMatchObject({ agent: 'q1', state: 'failed', detail: 'agent q1 was stopped before the end of the run' });
    expect(host.stops).toBe(1);
  }, 60_000);
});
