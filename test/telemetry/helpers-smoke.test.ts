import { afterAll, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { Mosquitto, describeMosquitto, startAedes } from '../helpers/mosquitto.js';

async function roundTrip(url: string, protocolVersion: 4 | 5): Promise<string> {
  const c = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 });
  await c.subscribeAsync('t/x', { qos: 1 });
  const got = new Promise<string>((r) => c.once('message', (_t, p) => r(p.toString())));
  await c.publishAsync('t/x', 'hi', { qos: 1 });
  const v = await got;
  await c.endAsync();
  return v;
}

describeMosquitto('broker helpers', () => {
  let m: Mosquitto;
  afterAll(async () => m?.dispose());
  it('mosquitto starts, restarts on the same port, kills', async () => {
    m = await Mosquitto.start();
    expect(await roundTrip(m.url, 5)).toBe('hi');
    const port = m.port;
    await m.kill();
    expect(m.running).toBe(false);
    await m.restart();
    expect(m.port).toBe(port);
    expect(await roundTrip(m.url, 4)).toBe('hi');
  });
  it('aedes starts and restarts', async () => {
    const a = await startAedes();
    expect(await roundTrip(a.url, 4)).toBe('hi');
    await a.restart();
    expect(await roundTrip(a.url, 4)).toBe('hi');
    await a.close();
  });
});
