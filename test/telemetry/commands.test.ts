/**
 * Signed commands: every way a command can be bad is refused, counted and reported, and the device
 * still runs a good command afterwards; replays are refused across a restart (real files); the
 * handlers reach the target; end to end over a real broker with `edgerun cmd` as a subprocess.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import nacl from 'tweetnacl';
import { encode as cborEncode } from 'cborg';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { Governor } from '../../runtime/power/governor.js';
import { EnergyModel } from '../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../runtime/power/inference-costs.js';
import { SimulatedBattery } from '../../drivers/power/simulated-battery.js';
import { SimulatedLoad } from '../../drivers/power/simulated-load.js';
import { bundledSummaries, MODELS } from '../power/helpers.js';
import {
  CommandProcessor, ReplayMemory, buildCommand, type CommandEvent, type CommandTarget, type RejectReason,
} from '../../runtime/telemetry/commands.js';
import { encodeMessage } from '../../runtime/telemetry/envelope.js';
import { TrustStore } from '../../runtime/telemetry/keys.js';
import { commandFilter, commandTopic, deviceTopic, type DeviceAddress } from '../../runtime/telemetry/topics.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { edgerun } from '../helpers/cli.js';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';

// Real CLI subprocesses (tsx start-up each) on 2 shared cores: a generous bound, not a speed claim.
vi.setConfig({ testTimeout: 180_000 });

const root = mkdtempSync(join(tmpdir(), 'edgerun-cmd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const address: DeviceAddress = { prefix: 'edgerun', fleet: 'lab', device: 'cam-1' };
const T0 = 1_800_000_000_000;
const WINDOW = 30_000;
const operator = nacl.sign.keyPair();
const stranger = nacl.sign.keyPair();

/** Records what the handlers asked for; throws when told to (a handler's failure is an outcome, not a crash). */
class RecordingTarget implements CommandTarget {
  calls: [string, unknown][] = [];
  failNext: Error | undefined;
  #do(name: string, arg: unknown, result: unknown): unknown {
    if (this.failNext) { const e = this.failNext; this.failNext = undefined; throw e; }
    this.calls.push([name, arg]);
    return result;
  }
  setPowerBudget(change: unknown) { return this.#do('setPowerBudget', change, { applied: change }); }
  setPlacement(change: unknown) { return this.#do('setPlacement', change, undefined); }
  async publishSnapshot() { await Promise.resolve(); return this.#do('publishSnapshot', undefined, { published: true }); }
  pauseStream(stream: string) { return this.#do('pauseStream', stream, undefined); }
  resumeStream(stream: string) { return this.#do('resumeStream', stream, undefined); }
}

interface Device {
  processor: CommandProcessor;
  target: RecordingTarget;
  events: CommandEvent[];
  clock: ManualClock;
  dir: string;
}

async function device(dir = join(root, `dev${dirs++}`), clock = new ManualClock(T0)): Promise<Device> {
  const storage = new FsStorage(dir, 0o600);
  const trust = await TrustStore.open(storage);
  if (!trust.list().length) await trust.add('operator', operator.publicKey);
  const replay = await ReplayMemory.open(storage);
  const target = new RecordingTarget();
  const events: CommandEvent[] = [];
  const processor = new CommandProcessor({ address, trust, replay, wallClock: clock, windowMs: WINDOW, maxBytes: 2048, target, report: (e) => { events.push(e); } });
  return { processor, target, events, clock, dir };
}

const topic = (name: string, a: DeviceAddress = address): string => commandTopic(a, name);
const cmd = (name: string, args: unknown, o: Partial<Parameters<typeof buildCommand>[0]> = {}): Uint8Array =>
  buildCommand({ device: address.device, name, args, signer: operator, ts: T0, ...o });
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function expectRejected(d: Device, t: string, payload: Uint8Array, reason: RejectReason): Promise<void> {
  const before = d.processor.counters().rejected[reason];
  const calls = d.target.calls.length;
  const event = await d.processor.handle(t, payload);
  expect(event).toMatchObject({ type: 'command-rejected', reason });
  expect(d.processor.counters().rejected[reason]).toBe(before + 1);
  expect(d.events.at(-1)).toEqual(event);
  expect(d.target.calls.length).toBe(calls); // nothing ran
  // ... and the device still takes a good command afterwards.
  const ok = await d.processor.handle(topic('telemetry-snapshot'), cmd('telemetry-snapshot', {}, { ts: d.clock.now() }));
  expect(ok).toMatchObject({ type: 'command-result', ok: true, command: 'telemetry-snapshot' });
  expect(d.target.calls.at(-1)).toEqual(['publishSnapshot', undefined]);
}

/** Rejected with this reason on the pause-stream topic, nothing ran (no good-command follow-up). */
async function expectRejectedBy(d: Device, payload: Uint8Array, reason: RejectReason): Promise<void> {
  const calls = d.target.calls.length;
  expect(await d.processor.handle(topic('pause-stream'), payload)).toMatchObject({ type: 'command-rejected', reason });
  expect(d.target.calls.length).toBe(calls);
}

describe('command verification', () => {
  let d: Device;
  beforeEach(async () => { d = await device(); });

  it('a valid command reaches the target and its outcome is reported', async () => {
    const e = await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }));
    expect(e).toEqual({ type: 'command-result', command: 'pause-stream', nonce: expect.any(String), signer: { name: 'operator', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/) }, ok: true });
    expect(d.target.calls).toEqual([['pauseStream', 'camera']]);
    expect(d.events).toEqual([e]);
    expect(d.processor.counters()).toMatchObject({ received: 1, accepted: 1, succeeded: 1, failed: 0 });
  });

  it('every command reaches its handler with validated args (JSON and CBOR)', async () => {
    await d.processor.handle(topic('set-power-budget'), cmd('set-power-budget', { powerCapW: 2.5, batteryReservePct: null }));
    await d.processor.handle(topic('set-placement'), cmd('set-placement', { model: 'cnn', policy: 'digital' }, { encoding: 'cbor' }));
    await d.processor.handle(topic('set-placement'), cmd('set-placement', { policy: 'auto' }));
    await d.processor.handle(topic('telemetry-snapshot'), cmd('telemetry-snapshot', undefined));
    await d.processor.handle(topic('resume-stream'), cmd('resume-stream', { stream: 'camera' }, { encoding: 'cbor' }));
    expect(d.target.calls).toEqual([
      ['setPowerBudget', { powerCapW: 2.5, batteryReservePct: undefined }],
      ['setPlacement', { model: 'cnn', policy: 'digital' }],
      ['setPlacement', { policy: 'auto' }],
      ['publishSnapshot', undefined],
      ['resumeStream', 'camera'],
    ]);
    expect(d.events.map((e) => e.type === 'command-result' && e.ok)).toEqual([true, true, true, true, true]);
    expect(d.events[0]).toMatchObject({ result: { applied: { powerCapW: 2.5 } } });
  });

  it('JSON with leading whitespace, and the MQTT 5 content type, are recognised; a content type that contradicts the bytes is malformed', async () => {
    const spaced = Uint8Array.from([...utf8(' \n'), ...cmd('pause-stream', { stream: 'a' })]);
    expect(await d.processor.handle(topic('pause-stream'), spaced)).toMatchObject({ type: 'command-result', ok: true });
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'b' }, { encoding: 'cbor' }), 'application/cbor')).toMatchObject({ type: 'command-result', ok: true });
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'c' }), 'application/cbor')).toMatchObject({ type: 'command-rejected', reason: 'malformed' });
    expect(d.target.calls).toEqual([['pauseStream', 'a'], ['pauseStream', 'b']]);
  });

  it('a handler that throws is reported as ok:false, counted, and the next command runs', async () => {
    d.target.failNext = new Error('no stream camera2');
    const e = await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'camera2' }));
    expect(e).toMatchObject({ type: 'command-result', ok: false, error: 'no stream camera2' });
    expect(d.processor.counters()).toMatchObject({ accepted: 1, failed: 1 });
    const ok = await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }));
    expect(ok).toMatchObject({ ok: true });
  });

  it('forged signature', async () => {
    const good = new TextDecoder().decode(cmd('pause-stream', { stream: 'camera' }));
    const env = JSON.parse(good) as { msg: string; key: string; sig: string };
    const tampered = JSON.stringify({ ...env, msg: env.msg.replace('camera', 'camerb') });
    await expectRejected(d, topic('pause-stream'), utf8(tampered), 'forged-signature');
    // A stranger's signature presented under the operator's key.
    const strangers = JSON.parse(new TextDecoder().decode(cmd('pause-stream', { stream: 'camera' }, { signer: stranger }))) as { sig: string };
    await expectRejected(d, topic('pause-stream'), utf8(JSON.stringify({ ...env, sig: strangers.sig })), 'forged-signature');
  });

  it('unknown key and unsigned', async () => {
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }, { signer: stranger, nonce: 'n-0123456789' }), 'unknown-key');
    const unsigned = encodeMessage({ device: address.device, seq: 1, ts: T0, kind: 'cmd', body: { name: 'pause-stream', args: { stream: 'camera' }, nonce: 'abcdefgh12' } });
    await expectRejected(d, topic('pause-stream'), unsigned, 'unsigned');
    expect(d.events.find((e) => e.type === 'command-rejected' && e.reason === 'unknown-key')).toMatchObject({ signer: expect.stringMatching(/^[0-9a-f]{16}$/), nonce: 'n-0123456789' });
    // A stranger's key is refused before its signature is even checked (forged or not), JSON or CBOR.
    const garbage = JSON.parse(new TextDecoder().decode(cmd('pause-stream', { stream: 'camera' }, { signer: stranger }))) as { sig: string };
    await expectRejected(d, topic('pause-stream'), utf8(JSON.stringify({ ...garbage, sig: Buffer.alloc(64, 7).toString('base64') })), 'unknown-key');
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }, { signer: stranger, encoding: 'cbor' }), 'unknown-key');
  });

  it('stale: too old and too far in the future; the edges of the window are fresh', async () => {
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'a' }, { ts: T0 - WINDOW - 1 }), 'stale');
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'a' }, { ts: T0 + WINDOW + 1 }), 'stale');
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'a' }, { ts: T0 - WINDOW }))).toMatchObject({ ok: true });
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'a' }, { ts: T0 + WINDOW }))).toMatchObject({ ok: true });
    // A command that was fresh when sent is stale once the device's clock moved on.
    const later = cmd('pause-stream', { stream: 'a' });
    d.clock.advance(WINDOW + 1);
    await expectRejected(d, topic('pause-stream'), later, 'stale');
  });

  it('replayed, also after the device restarts on the same storage', async () => {
    const payload = cmd('pause-stream', { stream: 'camera' });
    expect(await d.processor.handle(topic('pause-stream'), payload)).toMatchObject({ ok: true });
    await expectRejected(d, topic('pause-stream'), payload, 'replayed');
    // Same nonce, re-signed with a new ts: still the same command.
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }, { nonce: JSON.parse(JSON.parse(new TextDecoder().decode(payload)).msg).body.nonce, ts: T0 + 5 }), 'replayed');

    d.clock.advance(10_000);
    const restarted = await device(d.dir, d.clock);
    await expectRejected(restarted, topic('pause-stream'), payload, 'replayed');
    expect(restarted.target.calls.filter(([n]) => n === 'pauseStream')).toEqual([]);
    // Past the window, the replay is stale (and the memory has forgotten it: bounded).
    restarted.clock.advance(WINDOW);
    await expectRejected(restarted, topic('pause-stream'), payload, 'stale');
  });

  it('the replay memory stays bounded by the window', async () => {
    for (let i = 0; i < 20; i++) {
      expect(await d.processor.handle(topic('telemetry-snapshot'), cmd('telemetry-snapshot', {}, { ts: d.clock.now() }))).toMatchObject({ ok: true });
      d.clock.advance(WINDOW / 4);
    }
    const replay = await ReplayMemory.open(new FsStorage(d.dir, 0o600));
    expect(replay.size).toBeLessThanOrEqual(6);
  });

  it('malformed: not JSON/CBOR, not an envelope, wrong kind, wrong body, name differs from the topic', async () => {
    await expectRejected(d, topic('pause-stream'), utf8('{not json'), 'malformed');
    await expectRejected(d, topic('pause-stream'), new Uint8Array([0xff, 0x00, 0x13]), 'malformed');
    await expectRejected(d, topic('pause-stream'), new Uint8Array(0), 'malformed');
    await expectRejected(d, topic('pause-stream'), cborEncode([1, 2, 3]), 'malformed');
    await expectRejected(d, topic('pause-stream'), utf8('{"msg": 3, "key": "x", "sig": "y"}'), 'malformed');
    const signed = (message: Record<string, unknown>): Uint8Array => encodeMessage(message as never, { signer: operator });
    await expectRejected(d, topic('pause-stream'), signed({ device: address.device, seq: 1, ts: T0, kind: 'results', body: { name: 'pause-stream', args: {}, nonce: 'abcdefgh1' } }), 'malformed');
    await expectRejected(d, topic('pause-stream'), signed({ device: address.device, seq: 1, ts: T0, kind: 'cmd', body: 'pause' }), 'malformed');
    await expectRejected(d, topic('pause-stream'), signed({ device: address.device, seq: 1, ts: T0, kind: 'cmd', body: { name: 'pause-stream', args: {} } }), 'malformed');
    await expectRejected(d, topic('pause-stream'), cmd('resume-stream', { stream: 'camera' }), 'malformed');
    await expectRejected(d, 'edgerun/lab/cam-1/cmd', cmd('pause-stream', { stream: 'camera' }), 'malformed');
  });

  it('oversized', async () => {
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera', pad: 'x'.repeat(4000) }), 'oversized');
  });

  it('wrong device (in the message or in the topic)', async () => {
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera' }, { device: 'cam-2' }), 'wrong-device');
    await expectRejected(d, topic('pause-stream', { ...address, device: 'cam-2' }), cmd('pause-stream', { stream: 'camera' }), 'wrong-device');
    await expectRejected(d, topic('pause-stream', { ...address, fleet: 'other' }), cmd('pause-stream', { stream: 'camera' }), 'wrong-device');
  });

  it('unknown command', async () => {
    await expectRejected(d, topic('reboot'), cmd('reboot', {}), 'unknown-command');
    await expectRejected(d, topic('__proto__'), cmd('__proto__', {}), 'unknown-command');
  });

  it('bad args', async () => {
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', {}), 'bad-args');
    await expectRejected(d, topic('pause-stream'), cmd('pause-stream', { stream: 'camera', extra: 1 }), 'bad-args');
    await expectRejected(d, topic('set-placement'), cmd('set-placement', { policy: 'quantum' }), 'bad-args');
    await expectRejected(d, topic('set-power-budget'), cmd('set-power-budget', { powerCapW: -1 }), 'bad-args');
    await expectRejected(d, topic('set-power-budget'), cmd('set-power-budget', {}), 'bad-args');
    await expectRejected(d, topic('telemetry-snapshot'), cmd('telemetry-snapshot', { now: true }), 'bad-args');
    const e = d.events.find((x) => x.type === 'command-rejected' && x.reason === 'bad-args' && x.command === 'set-placement');
    expect(e).toMatchObject({ detail: expect.stringContaining('policy') });
  });

  it('trust and revocation take effect on a running device; an unreadable trust store refuses commands', async () => {
    const other = await TrustStore.open(new FsStorage(d.dir, 0o600)); // what `edgerun keys trust/untrust` does meanwhile
    await other.add('second', stranger.publicKey);
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'a' }, { signer: stranger }))).toMatchObject({ ok: true, signer: { name: 'second' } });
    await other.remove('operator');
    await expectRejectedBy(d, cmd('pause-stream', { stream: 'a' }), 'unknown-key');
    writeFileSync(join(d.dir, 'trusted-keys.json'), '{"keys": [broken');
    await expectRejectedBy(d, cmd('pause-stream', { stream: 'a' }, { signer: stranger }), 'storage-error');
    await other.add('operator', operator.publicKey);
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', { stream: 'a' }))).toMatchObject({ ok: true });
  });

  it('a command whose acceptance cannot be recorded does not run, and is accepted when sent again after storage recovers', async () => {
    const payload = cmd('pause-stream', { stream: 'camera' });
    const trustText = readFileSync(join(d.dir, 'trusted-keys.json'));
    rmSync(d.dir, { recursive: true, force: true }); // the key directory vanished (unmounted card)
    mkdirSync(d.dir, { recursive: true });
    writeFileSync(join(d.dir, 'trusted-keys.json'), trustText);
    chmodSync(d.dir, 0o500);
    const canWrite = (() => { try { writeFileSync(join(d.dir, 'probe'), ''); return true; } catch { return false; } })();
    if (canWrite) {
      // Running as root: permissions do not stop writes; make the replay file a directory instead.
      rmSync(join(d.dir, 'probe'));
      mkdirSync(join(d.dir, 'command-replay.json'));
    }
    const e = await d.processor.handle(topic('pause-stream'), payload);
    // The nonce comes with it: the sender learns at once that this command was refused.
    expect(e).toMatchObject({ type: 'command-rejected', reason: 'storage-error', nonce: expect.any(String) });
    expect(d.target.calls).toEqual([]);
    chmodSync(d.dir, 0o700);
    rmSync(join(d.dir, 'command-replay.json'), { recursive: true, force: true });
    expect(readdirSync(d.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]); // no temporary left behind
    expect(await d.processor.handle(topic('pause-stream'), payload)).toMatchObject({ ok: true });
    expect(d.target.calls).toEqual([['pauseStream', 'camera']]);
  });

  it('a flood of rejections is counted in full but reported at a bounded rate', async () => {
    for (let i = 0; i < 100; i++) await d.processor.handle(topic('pause-stream'), utf8('{not json'));
    const c = d.processor.counters();
    expect(c.rejected.malformed).toBe(100);
    expect(d.events.length).toBe(20);
    expect(c.suppressedEvents).toBe(80);
    // A trusted signer's refused command has its own budget: the junk did not use it up.
    expect(await d.processor.handle(topic('pause-stream'), cmd('pause-stream', {}))).toMatchObject({ reason: 'bad-args' });
    expect(d.events.length).toBe(21);
    expect(d.events.at(-1)).toMatchObject({ reason: 'bad-args', signer: expect.any(String) });
    expect(d.events.at(-1)).not.toHaveProperty('authenticated');
    // ... but it is bounded too: replaying a captured command over and over does not flood the outbox.
    const captured = cmd('pause-stream', { stream: 'x' });
    for (let i = 0; i < 50; i++) await d.processor.handle(topic('pause-stream'), captured);
    expect(d.processor.counters().rejected.replayed).toBe(49);
    expect(d.events.length).toBe(22 + 19); // the accepted one's result, then 19 more rejections in the budget
    expect(d.processor.counters().suppressedEvents).toBe(80 + 30);
    d.clock.advance(WINDOW);
    await d.processor.handle(topic('pause-stream'), utf8('{not json'));
    expect(d.events.at(-1)).toMatchObject({ reason: 'malformed', suppressed: 80 });
    d.clock.advance(1);
    await d.processor.handle(topic('pause-stream'), captured); // now stale
    expect(d.events.at(-1)).toMatchObject({ reason: 'stale', suppressed: 30 });
  });
});

describe('set-power-budget on a real Governor', () => {
  it('changes the policy at run time; an invalid budget is refused as bad-args and changes nothing', async () => {
    const dir = join(root, `gov${dirs++}`);
    const storage = new FsStorage(dir, 0o600);
    const trust = await TrustStore.open(storage);
    await trust.add('operator', operator.publicKey);
    const clock = new ManualClock(T0);
    const summaries = await bundledSummaries();
    const costs = new InferenceCostTable({ energy: new EnergyModel(), dacBits: 8 });
    for (const m of MODELS) costs.add(m, summaries[m]);
    const streams = [{ id: 'camera', priority: 1, rateHz: 10, model: 'mlp' }];
    const battery = new SimulatedBattery({ clock, capacityWh: 1, idleW: 0.01 });
    const load = new SimulatedLoad({ clock, battery, costs, streams, placements: { mlp: 'digital' } });
    const governor = new Governor({ system: load, costs, clock, streams, idleW: 0.01, policy: { powerCapW: 5 } });
    const events: CommandEvent[] = [];
    const target: CommandTarget = {
      setPowerBudget: (change) => governor.setPolicy(change, 'command'),
      setPlacement: () => undefined, publishSnapshot: () => undefined, pauseStream: () => undefined, resumeStream: () => undefined,
    };
    const p = new CommandProcessor({ address, trust, replay: await ReplayMemory.open(storage), wallClock: clock, target, report: (e) => { events.push(e); } });
    const ok = await p.handle(topic('set-power-budget'), cmd('set-power-budget', { powerCapW: 2, batteryReservePct: 20 }));
    expect(ok).toMatchObject({ ok: true, result: { powerCapW: 2, batteryReservePct: 20 } });
    expect(governor.policy).toMatchObject({ powerCapW: 2, batteryReservePct: 20 });
    const cleared = await p.handle(topic('set-power-budget'), cmd('set-power-budget', { powerCapW: null }));
    expect(cleared).toMatchObject({ ok: true });
    expect(governor.policy.powerCapW).toBeUndefined();
    const refused = await p.handle(topic('set-power-budget'), cmd('set-power-budget', { energyBudget: { joules: 10, wh: 1 } }));
    expect(refused).toMatchObject({ type: 'command-rejected', reason: 'bad-args' });
    expect(governor.policy.energyBudget).toBeUndefined();
  });
});

describeMosquitto('edgerun cmd → a device on a real Mosquitto', () => {
  let broker: Mosquitto;
  let deviceClient: MqttClient;
  let detach: () => Promise<void>;
  let target: RecordingTarget;
  let processor: CommandProcessor;
  const lab: DeviceAddress = { prefix: 'edgerun', fleet: 'lab', device: 'cam-e2e' };
  const operatorDir = join(root, 'operator');

  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    const gen = await edgerun(['keys', 'gen', '--dir', operatorDir, '--name', 'ops']);
    expect(gen.code, gen.stderr).toBe(0);
    const deviceDir = join(root, 'e2e-device');
    const trustCli = await edgerun(['keys', 'trust', join(operatorDir, 'ops.key'), '--dir', deviceDir]);
    expect(trustCli.code, trustCli.stderr).toBe(0);
    const storage = new FsStorage(deviceDir, 0o600);
    target = new RecordingTarget();
    deviceClient = new MqttClient({ url: broker.url, clientId: 'cam-e2e', clean: true });
    let seq = 0;
    processor = new CommandProcessor({
      address: lab, trust: await TrustStore.open(storage), replay: await ReplayMemory.open(storage), target,
      report: (e) => deviceClient.publish(deviceTopic(lab, 'events'), encodeMessage({ device: lab.device, seq: seq++, ts: Date.now(), kind: 'events', body: e }), { qos: 1 }),
    });
    const connected = new Promise<void>((r) => deviceClient.onConnect(() => r()));
    deviceClient.connect();
    await connected;
    detach = processor.attach(deviceClient);
    await deviceClient.subscribe(commandFilter(lab), 1); // resolves once subscribed (attach subscribes too)
  });
  afterAll(async () => {
    await detach?.();
    await deviceClient?.end();
    await broker?.dispose();
  });

  it('a signed command runs on the device and --wait prints its outcome', async () => {
    const r = await edgerun(['cmd', 'cam-e2e', 'pause-stream', '--args', '{"stream":"camera"}', '--key', join(operatorDir, 'ops.key'), '--url', broker.url, '--fleet', 'lab', '--wait', '20', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [sent, outcome] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(sent).toMatchObject({ topic: 'edgerun/lab/cam-e2e/cmd/pause-stream', command: 'pause-stream' });
    expect(outcome).toMatchObject({ type: 'command-result', command: 'pause-stream', ok: true, nonce: sent!.nonce, signer: { name: 'ops' } });
    expect(target.calls).toEqual([['pauseStream', 'camera']]);

    const cbor = await edgerun(['cmd', 'cam-e2e', 'set-power-budget', '--args', '{"powerCapW":1.5}', '--key', join(operatorDir, 'ops.key'), '--url', broker.url, '--fleet', 'lab', '--encoding', 'cbor', '--wait', '20']);
    expect(cbor.code, cbor.stderr).toBe(0);
    expect(cbor.stdout).toMatch(/^ok/m);
    expect(target.calls.at(-1)).toEqual(['setPowerBudget', { powerCapW: 1.5 }]);
  });

  it('bad args and an untrusted key are refused: --wait reports it and exits 1; nothing runs', async () => {
    const calls = target.calls.length;
    const bad = await edgerun(['cmd', 'cam-e2e', 'set-placement', '--args', '{"policy":"quantum"}', '--key', join(operatorDir, 'ops.key'), '--url', broker.url, '--fleet', 'lab', '--wait', '20']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/rejected: bad-args/);
    const stranger = join(root, 'stranger');
    expect((await edgerun(['keys', 'gen', '--dir', stranger, '--name', 'eve'])).code).toBe(0);
    const untrusted = await edgerun(['cmd', 'cam-e2e', 'pause-stream', '--args', '{"stream":"camera"}', '--key', join(stranger, 'eve.key'), '--url', broker.url, '--fleet', 'lab', '--wait', '20']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stdout).toMatch(/rejected: unknown-key/);
    expect(target.calls.length).toBe(calls);
    expect(processor.counters().rejected).toMatchObject({ 'bad-args': 1, 'unknown-key': 1 });
    const notJson = await edgerun(['cmd', 'cam-e2e', 'pause-stream', '--args', '{nope', '--key', join(operatorDir, 'ops.key'), '--url', broker.url]);
    expect(notJson.code).not.toBe(0);
    expect(notJson.stderr).toMatch(/--args is not valid JSON/);
  });
  it('a flood of junk on the command topics is refused (bounded queue) and a good command still runs afterwards', async () => {
    const before = processor.counters();
    const flood = await mqtt.connectAsync(broker.url, { clientId: 'flooder' });
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => flood.publishAsync(`edgerun/lab/cam-e2e/cmd/pause-stream`, Buffer.from(`{junk ${i}`), { qos: 1 })));
    await flood.endAsync();
    const rejectedOf = (c: ReturnType<typeof processor.counters>): number => c.rejected.malformed + c.rejected['rate-limited'];
    for (let i = 0; i < 300 && rejectedOf(processor.counters()) - rejectedOf(before) < N; i++) await new Promise((r) => setTimeout(r, 50));
    expect(rejectedOf(processor.counters()) - rejectedOf(before)).toBe(N);
    const ok = await edgerun(['cmd', 'cam-e2e', 'resume-stream', '--args', '{"stream":"camera"}', '--key', join(operatorDir, 'ops.key'), '--url', broker.url, '--fleet', 'lab', '--wait', '20']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(target.calls.at(-1)).toEqual(['resumeStream', 'camera']);
  });
});
