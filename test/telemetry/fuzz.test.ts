/**
 * Property-based fuzzing (fast-check) of every parser of outside bytes on the MQTT side: message
 * envelopes (JSON and CBOR, signed and not) as the listener takes them, signed commands as the
 * device takes them, outbox journal segments, and the state files (seq.state, the command replay
 * file, the trust store). Arbitrary bytes and mutations of valid inputs; each ends in a clean error
 * or a counted rejection — never another exception, a hang, or a change of state it should not
 * make. Bounded: a few hundred cases each, seconds in all.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeVerify } from '../../drivers/crypto/ed25519.js';
import { MqttClient } from '../../drivers/mqtt/mqtt-client.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { CommandProcessor, ReplayMemory, buildCommand, type CommandTarget } from '../../runtime/telemetry/commands.js';
import { EnvelopeError, decodeMessage, encodeMessage, type Encoding, type Message } from '../../runtime/telemetry/envelope.js';
import { RecordType, encodeData, encodeSeqList, parseSegment } from '../../runtime/telemetry/journal.js';
import { KeyError, TrustStore, generateKeyPair } from '../../runtime/telemetry/keys.js';
import { Listener } from '../../runtime/telemetry/listener.js';
import { Outbox } from '../../runtime/telemetry/outbox.js';
import { Reporter } from '../../runtime/telemetry/reporter.js';
import { commandTopic, deviceTopic } from '../../runtime/telemetry/topics.js';

const root = mkdtempSync(join(tmpdir(), 'edgerun-fuzz-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `d${++dirs}`);

const device = generateKeyPair();
const PREFIX = 'edgerun';
const addr = { prefix: PREFIX, fleet: 'f', device: 'cam-1' };

/** Mutations of a valid payload: flip a byte, truncate, or splice bytes in. */
const mutated = (valid: Uint8Array): fc.Arbitrary<Uint8Array> => fc.oneof(
  fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = valid.slice(); b[i]! ^= x; return b; }),
  fc.nat(valid.length - 1).map((n) => valid.slice(0, n)),
  fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, ins]) => Uint8Array.from([...valid.subarray(0, i), ...ins, ...valid.subarray(i)])),
);

const messageArb: fc.Arbitrary<Message> = fc.record({
  device: fc.constant('cam-1'),
  session: fc.stringMatching(/^[0-9a-f]{16}$/),
  seq: fc.nat(),
  ts: fc.nat(),
  kind: fc.constantFrom('results', 'events', 'telemetry'),
  body: fc.jsonValue({ maxDepth: 3 }),
});
const encodingArb: fc.Arbitrary<Encoding> = fc.constantFrom('json', 'cbor');
const contentTypeArb = fc.constantFrom(undefined, 'application/json', 'application/cbor', 'text/plain', 'application/json; charset=utf-8');

describe('fuzz: message envelopes', () => {
  it('arbitrary bytes: decoded or an EnvelopeError, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), contentTypeArb, (bytes, type) => {
      try {
        decodeMessage(bytes, 1 << 16, undefined, type);
      } catch (e) {
        expect(e).toBeInstanceOf(EnvelopeError);
      }
    }), { numRuns: 2000 });
  });

  it('hostile shapes: deep nesting, huge declared lengths, oversize — clean errors, no allocation', () => {
    const cases = [
      new TextEncoder().encode('['.repeat(200_000)),
      new TextEncoder().encode(`{"a":${'['.repeat(100_000)}`),
      Uint8Array.from([...new Array(100_000).fill(0x81), 0x00]), // CBOR arrays nested 100k deep
      Uint8Array.from([0xa1, 0x61, 0x61, 0x5b, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // a 2^60-byte byte string
      Uint8Array.from([0xbb, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // a map of 2^60 entries
      new Uint8Array((1 << 16) + 1),
    ];
    for (const c of cases) expect(() => decodeMessage(c, 1 << 16)).toThrow(EnvelopeError);
  });

  it('mutated messages, signed and not: an EnvelopeError, or what was signed — never a different signed message', () => {
    fc.assert(fc.property(messageArb, encodingArb, fc.boolean(), fc.gen(), (m, encoding, signed, gen) => {
      const valid = encodeMessage(m, { encoding, ...(signed ? { signer: device } : {}) });
      const original = decodeMessage(valid, 1 << 20, nativeVerify).message;
      const bytes = gen(mutated, valid);
      let got;
      try {
        got = decodeMessage(bytes, 1 << 20, nativeVerify);
      } catch (e) {
        expect(e).toBeInstanceOf(EnvelopeError);
        return;
      }
      if (got.signedBy) expect(got.message).toEqual(original);
    }), { numRuns: 600 });
  });

  it('the listener never throws, and a rejected message leaves its state as it was', () => {
    const l = new Listener({ prefix: PREFIX, window: 256 });
    const topicArb = fc.oneof(fc.constant(deviceTopic(addr, 'results')), fc.constant(deviceTopic(addr, 'status')), fc.string({ maxLength: 40 }));
    const payloadArb = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.tuple(messageArb, encodingArb, fc.boolean()).chain(([m, e, s]) => mutated(encodeMessage(m, { encoding: e, ...(s ? { signer: device } : {}) }))),
      fc.tuple(messageArb, encodingArb).map(([m, e]) => encodeMessage(m, { encoding: e })),
    );
    fc.assert(fc.property(topicArb, payloadArb, fc.boolean(), (topic, payload, retained) => {
      const before = l.summary();
      const o = l.accept(topic, payload, { retained });
      const after = l.summary();
      if (o.status === 'rejected') {
        expect(after.rejected[o.reason]).toBe(before.rejected[o.reason] + 1);
        expect({ ...after, rejected: before.rejected }).toEqual(before);
      } else if (o.status === 'retained') {
        expect(after).toEqual(before);
      }
    }), { numRuns: 1500 });
  });
});

describe('fuzz: signed commands', () => {
  it('junk and mutated commands are refused and counted; no command other than the one signed ever runs; replay state moves only for a run', async () => {
    const dir = freshDir();
    const storage = new FsStorage(dir, 0o600);
    const trust = await TrustStore.open(storage);
    await trust.add('operator', device.publicKey);
    const replay = await ReplayMemory.open(storage);
    const ran: { name: string; args: unknown }[] = [];
    const record = (name: string, args: unknown): unknown => { ran.push({ name, args }); return { ok: true }; };
    const target: CommandTarget = {
      setPowerBudget: (change) => record('set-power-budget', change), setPlacement: (change) => record('set-placement', change),
      publishSnapshot: () => record('telemetry-snapshot', {}), pauseStream: (stream) => record('pause-stream', { stream }), resumeStream: (stream) => record('resume-stream', { stream }),
    };
    const processor = new CommandProcessor({ address: addr, trust, replay, target, report: () => undefined, rejectEventsPerWindow: 0 });
    const topic = commandTopic(addr, 'pause-stream');

    await fc.assert(fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ bytes, nonce: undefined as string | undefined })),
        fc.tuple(fc.stringMatching(/^[0-9a-f]{16}$/), fc.string({ maxLength: 8 }), encodingArb, fc.gen()).map(([nonce, stream, encoding, gen]) => {
          const valid = buildCommand({ device: 'cam-1', name: 'pause-stream', args: { stream }, signer: device, nonce, encoding });
          return { bytes: gen(mutated, valid), nonce: `${nonce}:${stream}` as string | undefined };
        }),
      ),
      async ({ bytes, nonce }) => {
        const ranBefore = ran.length;
        const replayBefore = replay.size;
        const event = await processor.handle(topic, bytes);
        if (event.type === 'command-rejected') {
          expect(ran.length).toBe(ranBefore);
          expect(replay.size).toBe(replayBefore);
        } else {
          // Only a mutation that changed nothing signed (e.g. base64 bits that decode the same) may run, and it runs what was signed.
          expect(nonce).toBeDefined();
          expect(`${event.nonce}:${(ran.at(-1)!.args as { stream: string }).stream}`).toBe(nonce);
        }
      },
    ), { numRuns: 300 });
    const c = processor.counters();
    expect(c.received).toBe(300);
    expect(c.accepted + Object.values(c.rejected).reduce((a, b) => a + b, 0)).toBe(300);
    await storage.close();
  });
});

describe('fuzz: outbox journal and state files', () => {
  const dataRecords = (n: number) => Array.from({ length: n }, (_, i) => ({ seq: 100 + i, kind: 'results', payload: new TextEncoder().encode(`{"n":${i}}`) }));

  it('arbitrary segment bytes: parsed without throwing; every record it yields is well-formed', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      const p = parseSegment(bytes);
      for (const r of p.records) if (r.type === RecordType.Data) expect(Number.isSafeInteger(r.seq) && r.seq >= 0).toBe(true);
      expect(p.corruptBytes).toBeLessThanOrEqual(bytes.length);
    }), { numRuns: 2000 });
  });

  it('crafted garbage (a magic and a plausible length every few bytes) does not make the resync scan quadratic', () => {
    const first = encodeData(7, 1, 'results', new TextEncoder().encode('{"n":0}'));
    const garbage = new Uint8Array(4 << 20); // a whole default segment: quadratic resync would take hours
    for (let i = 0; i + 10 <= garbage.length; i += 10) {
      garbage[i] = 0xe5;
      garbage[i + 1] = 0x4a;
      new DataView(garbage.buffer).setUint32(i + 2, garbage.length - i - 10); // each claims to run to the end
    }
    const p = parseSegment(Uint8Array.from([...first, ...garbage]));
    expect(p.records).toEqual([expect.objectContaining({ type: RecordType.Data, seq: 7 })]);
    expect(p).toMatchObject({ corruptRegions: 1, corruptBytes: garbage.length });
    // A torn record followed by a good one: still found past the garbage.
    const good = encodeData(8, 1, 'results', new Uint8Array(3));
    expect(parseSegment(Uint8Array.from([...first.subarray(0, 20), ...good])).records).toEqual([expect.objectContaining({ seq: 8 })]);
  });

  it('a damaged segment: the outbox opens and replays only records that were written, intact', async () => {
    const records = dataRecords(12);
    const segment = Uint8Array.from([
      ...records.flatMap((r) => [...encodeData(r.seq, 1_800_000_000_000, r.kind, r.payload)]),
      ...encodeSeqList(RecordType.Ack, [100, 101, 102]),
    ]);
    await fc.assert(fc.asyncProperty(fc.gen(), async (gen) => {
      const dir = freshDir();
      const damaged = gen(mutated, segment);
      const storage = new FsStorage(dir);
      await storage.writeAtomic('outbox-000000000001.seg', damaged);
      const outbox = await Outbox.open(storage, { fsync: 'never' });
      for (const e of outbox.pending()) {
        const r = records.find((x) => x.seq === e.seq);
        expect(r, `seq ${e.seq} was never written`).toBeDefined();
        expect(e.payload).toEqual(r!.payload);
      }
      await outbox.close();
      await storage.close();
    }), { numRuns: 150 });
  });

  it('seq.state of any content: the reporter opens and numbers on from the journal, with safe integers', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 64 }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ next: v })),
      fc.constantFrom('{"next": -5}', '{"next": 1e300}', '{"next": 9007199254740993}', '{"next": 9007199254740000}', '{"next": 9007194959773000}', '{"next": "7"}', 'null', '[]', '{"next": 1.5}'),
    );
    await fc.assert(fc.asyncProperty(text, async (content) => {
      const dir = freshDir();
      const storage = new FsStorage(dir);
      await storage.writeAtomic('seq.state', new TextEncoder().encode(content));
      const mqtt = new MqttClient({ url: 'mqtt://127.0.0.1:1', clientId: 'fuzz' });
      const reporter = await Reporter.open({ mqtt, address: addr, storage, connect: false });
      // Room for billions more messages: a lease near 2^53 would run the numbers out of exact integers.
      expect(reporter.lastSeq + 1 + 2 ** 32).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
      expect(reporter.lastSeq + 1).toBeGreaterThanOrEqual(0);
      await reporter.close();
      await storage.close();
    }), { numRuns: 80 });
  });

  it('replay and trust files of any content: a clean error naming the file, or a usable store; the file is not rewritten', async () => {
    const content = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v))),
      fc.jsonValue({ maxDepth: 2 }).map((v) => new TextEncoder().encode(JSON.stringify({ v: 1, entries: v }))),
      fc.jsonValue({ maxDepth: 2 }).map((v) => new TextEncoder().encode(JSON.stringify({ keys: [v] }))),
    );
    await fc.assert(fc.asyncProperty(content, async (bytes) => {
      const dir = freshDir();
      const storage = new FsStorage(dir, 0o600);
      await storage.writeAtomic('command-replay.json', bytes);
      await storage.writeAtomic('trusted-keys.json', bytes);
      await ReplayMemory.open(storage).then(
        (m) => expect(m.size).toBeGreaterThanOrEqual(0),
        (e: Error) => expect(e.message).toMatch(/^replay state 'command-replay\.json'[: ]/),
      );
      await TrustStore.open(storage).then(
        (t) => expect(Array.isArray(t.list())).toBe(true),
        (e: Error) => { expect(e).toBeInstanceOf(KeyError); expect(e.message).toMatch(/^trust store 'trusted-keys\.json'/); },
      );
      expect(new Uint8Array(readFileSync(join(dir, 'command-replay.json')))).toEqual(bytes);
      expect(new Uint8Array(readFileSync(join(dir, 'trusted-keys.json')))).toEqual(bytes);
      await storage.close();
    }), { numRuns: 150 });
  });
});
