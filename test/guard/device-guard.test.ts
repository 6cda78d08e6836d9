/**
 * The accuracy guard on a real device: `edgerun serve` on the emulated analog crossbar with a
 * device profile whose cells are stuck (a fault rate, drawn again at every programming, as a worn
 * device would give), a real Mosquitto, and a foreign subscriber. The device's accuracy really is
 * below the guard's threshold; its escalation steps arrive as `events` over MQTT in the guard's
 * order (re-calibrate, re-program, demote layers, demote the model), each starting where the one
 * before ended, in the device's seq order, until one restores the figures.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { decodeMessage, type Message } from '../../runtime/telemetry/envelope.js';
import { repoRoot, startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const LADDER = ['recalibrate', 'reprogram', 'demote-layer', 'demote-model'];
let dir: string | undefined;
let broker: Mosquitto | undefined;
let watcher: MqttClient | undefined;
let device: EdgerunProcess | undefined;

afterAll(async () => {
  device?.proc.kill('SIGKILL');
  await device?.exit;
  await watcher?.end();
  await broker?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeMosquitto('accuracy guard on a worn device', () => {
  it('its steps arrive over MQTT in the guard\'s order, each from where the last ended, until restored', { timeout: 240_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgerun-device-guard-'));
    const profile = JSON.parse(readFileSync(join(repoRoot, 'drivers/crossbar/profiles/pcm.json'), 'utf8')) as Body;
    profile.name = 'pcm-worn';
    profile.faults = { stuckOn: 0.05, stuckOff: 0.15 };
    writeFileSync(join(dir, 'pcm-worn.json'), JSON.stringify(profile));

    broker = await Mosquitto.start({ persistence: false });
    watcher = new MqttClient({ url: broker.url, clientId: 'guard-watch', clean: true });
    const events: Message<Body>[] = [];
    const telemetry: Message<Body>[] = [];
    watcher.onMessage((m) => {
      try {
        const msg = decodeMessage<Body>(m.payload).message;
        (msg.kind === 'telemetry' ? telemetry : events).push(msg);
      } catch { /* not a message */ }
    });
    await watcher.subscribe('edgerun/worn/dev-g/events', 1);
    await watcher.subscribe('edgerun/worn/dev-g/telemetry', 1);
    const up = new Promise<void>((r) => watcher!.onConnect(() => r()));
    watcher.connect();
    await up;

    device = startEdgerun(['serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '10', '--state-dir', join(dir, 'state')], {
      EDGERUN_DEVICE__ID: 'dev-g', EDGERUN_DEVICE__FLEET: 'worn', EDGERUN_POWER__SENSOR: 'none',
      EDGERUN_PLACEMENT__DEFAULT: 'analog', EDGERUN_ANALOG__PROFILE: join(dir, 'pcm-worn.json'),
      EDGERUN_GUARD__ENABLED: 'true', EDGERUN_GUARD__INTERVAL_MS: '500', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '1000',
    });
    const guard = (): Message<Body>[] => events.filter((e) => e.body.type === 'guard');
    const ctx = (): string => `${device!.log()}\nguard events: ${JSON.stringify(guard().map((e) => e.body))}`;
    const restoring = await until('a guard step that restores the figures', () => guard().find((e) => e.body.restored === true), 180_000, ctx);

    // The steps of the first escalation, up to the one that restored: in arrival order = seq order.
    const steps = guard().slice(0, guard().indexOf(restoring) + 1);
    expect(steps.map((e) => e.seq)).toEqual([...steps.map((e) => e.seq)].sort((a, b) => a - b));
    // The accuracy really was low: below the guard's low thresholds (defaults 0.85 agreement, 0.95 cosine).
    const first = steps[0]!.body;
    expect(first.step, ctx()).toBe('recalibrate');
    expect(first.model).toBe('mlp');
    expect(first.before.agreement < 0.85 || first.before.cosine < 0.95).toBe(true);
    // The ladder, in order: each step is the same rung (another layer) or a later one; all but the last failed.
    const rungs = steps.map((e) => LADDER.indexOf(e.body.step));
    expect(rungs.every((r) => r >= 0)).toBe(true);
    expect(rungs).toEqual([...rungs].sort((a, b) => a - b));
    expect(rungs.filter((r) => r !== 2)).toEqual([...new Set(rungs.filter((r) => r !== 2))]);
    expect(steps.slice(0, -1).every((e) => e.body.restored === false)).toBe(true);
    // Each step starts from the figures the one before it left.
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.body.before, ctx()).toEqual(steps[i - 1]!.body.after);
    expect(restoring.body.after.agreement).toBeGreaterThanOrEqual(0.9);
    // Telemetry then names the guard's state: demoted when the whole model went digital, else ok.
    const want = restoring.body.step === 'demote-model' ? 'demoted' : 'ok';
    await until(`telemetry with the guard ${want}`, () => telemetry.find((t) => t.seq > restoring.seq && t.body.guards?.mlp?.state === want), 30_000, ctx);
  });
});
