/**
 * Protocol fuzzing, seeded: random bytes and mutated valid frames (bit flips, truncation, junk
 * appended, forged lengths, wrong types, spliced frames) thrown at the decoders, at the server
 * (in memory and in the real accel-emulator process) and at the client. Malformed input must be
 * answered with a protocol error and never crash either side; both keep serving afterwards.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Duplex } from 'node:stream';
import { createConnection } from 'node:net';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { FrameDecoder } from '../../drivers/remote/frame-decoder.js';
import {
  ABSOLUTE_MAX_PAYLOAD, ErrorCode, MessageType, ProtocolError, RESPONSE_BIT, decodeCapabilities, decodeConductances, decodeCounters,
  decodeError, decodeHealth, decodeMvmResult, decodeRequest, decodeTemperature, encodeCapabilities, encodeConductances, encodeCounters,
  encodeFrame, encodeHealth, encodeMvmResult, encodeRequest, encodeTemperature, type Frame, type Request,
} from '../../drivers/remote/protocol.js';
import { serveStream } from '../../drivers/remote/server.js';
import { RemoteCrossbarClient } from '../../drivers/remote/client.js';
import { unixSocketTransport } from '../../drivers/remote/transport.js';
import { AcceleratorError } from '../../runtime/scheduler/failure.js';
import { DeviceProcess, tempSocketPath } from './device-process.js';

/** mulberry32: a tiny seeded generator, so every failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID_REQUESTS: Request[] = [
  { type: MessageType.HELLO, maxPayload: 1 << 20 },
  { type: MessageType.PROGRAM, tileId: 0, rows: 4, cols: 3, weights: Float32Array.from({ length: 12 }, (_, i) => i / 12 - 0.5) },
  { type: MessageType.MVM, tileId: 0, batch: 2, rows: 4, x: Float32Array.from([1, 0, -1, 0.5, 0.25, 0.5, 0.75, 1]) },
  { type: MessageType.CALIBRATE, tileId: 0 },
  { type: MessageType.SET_AGE, seconds: 3600 },
  { type: MessageType.READ_CONDUCTANCES, tileId: 0 },
  { type: MessageType.HEALTH },
  { type: MessageType.COUNTERS },
  { type: MessageType.TEMPERATURE },
];
const requestFrames = VALID_REQUESTS.map((r, i) => encodeFrame(r.type, i + 1, encodeRequest(r)));
const HELLO = encodeFrame(MessageType.HELLO, 1000, encodeRequest({ type: MessageType.HELLO, maxPayload: 1 << 20 }));

/** One malformed (or occasionally still valid) byte string derived from `frames`. */
function mutate(frames: Uint8Array[], r: () => number): Uint8Array {
  const pick = (): Uint8Array => frames[Math.floor(r() * frames.length)]!.slice();
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const f = pick();
  const v = new DataView(f.buffer);
  switch (Math.floor(r() * 8)) {
    case 0: return randomBytes(Math.floor(r() * 64));
    case 1: { for (let k = 1 + Math.floor(r() * 4); k > 0; k--) f[Math.floor(r() * f.length)]! ^= 1 << Math.floor(r() * 8); return f; }
    case 2: return f.subarray(0, Math.floor(r() * f.length)); // truncated
    case 3: return Uint8Array.from([...f, ...randomBytes(1 + Math.floor(r() * 16))]); // trailing junk
    case 4: v.setUint32(12, [0xffffffff, ABSOLUTE_MAX_PAYLOAD + 1, Math.floor(r() * 2 ** 32), f.length - 16 + 4][Math.floor(r() * 4)]!, true); return f; // forged length
    case 5: v.setUint8(5, Math.floor(r() * 256)); return f; // wrong type
    case 6: { const g = pick(); return Uint8Array.from([...f.subarray(0, Math.floor(r() * f.length)), ...g]); } // spliced
    default: { if (f.length >= 20) v.setUint32(16, Math.floor(r() * 2 ** 32), true); return f; } // absurd first field
  }
}

/** A byte stream in memory: what we push is read by its owner, what it writes goes to `sink`. */
function memoryStream(sink: (chunk: Uint8Array) => void): Duplex {
  return new Duplex({ read() {}, write(chunk: Uint8Array, _e, cb) { sink(chunk); cb(); } });
}

const device = (): CrossbarEmulator => new CrossbarEmulator('pcm', { seed: 1, overrides: { tile: { rows: 8, cols: 8, count: 4 } } });

describe('capabilities', () => {
  const base = { driver: 'x', profile: 'pcm', tileRows: 8, tileCols: 8, tiles: 4, dacBits: 8, adcBits: 8, maxPayload: 4096, bootId: 'ab'.repeat(16) };
  it('carry the digital periphery\'s operators and energies; a payload that ends after the profile means none; unknown names are dropped', () => {
    const periphery = { Relu: 30, MaxPool: 30.5, Sigmoid: 1250 };
    expect(decodeCapabilities({ type: 0x81, id: 1, payload: encodeCapabilities({ ...base, periphery }) }).periphery).toEqual(periphery);
    const withForeign = encodeCapabilities({ ...base, periphery: { Relu: 30, Softplus: 99 } as never });
    expect(decodeCapabilities({ type: 0x81, id: 1, payload: withForeign }).periphery).toEqual({ Relu: 30 });
    // An older server's payload: no periphery field at all (drop the count byte of an empty list).
    const old = encodeCapabilities({ ...base, periphery: {} });
    expect(decodeCapabilities({ type: 0x81, id: 1, payload: old.subarray(0, old.length - 1) }).periphery).toEqual({});
    const negative = encodeCapabilities({ ...base, periphery: { Relu: -1 } });
    expect(() => decodeCapabilities({ type: 0x81, id: 1, payload: negative })).toThrow(/periphery operator Relu has energy -1 fJ/);
  });
});

describe('protocol fuzzing', () => {
  it('decoders reject 5,000 malformed inputs with ProtocolError only', () => {
    const r = rng(1);
    const responses = [
      encodeFrame(0x81, 1, encodeCapabilities({ driver: 'x', profile: 'pcm', tileRows: 8, tileCols: 8, tiles: 4, dacBits: 8, adcBits: Infinity, maxPayload: 4096, bootId: 'ab'.repeat(16) })),
      encodeFrame(0x83, 2, encodeMvmResult(2, 3, new Float32Array(6))),
      encodeFrame(0x86, 3, encodeConductances({ rows: 2, cols: 2, gPlus: new Float32Array(4), gMinus: new Float32Array(4) })),
      encodeFrame(0x87, 4, encodeHealth({ state: 'degraded', detail: 'warm' })),
      encodeFrame(0x88, 5, encodeCounters([{ tileId: 1, mvms: 2, macs: 3, dacConversions: 4, adcConversions: 5, cellsProgrammed: 6 }])),
      encodeFrame(0x89, 6, encodeTemperature(301)),
    ];
    const responseDecoders: Record<number, (f: Frame) => unknown> = { 0x81: decodeCapabilities, 0x83: decodeMvmResult, 0x86: decodeConductances, 0x87: decodeHealth, 0x88: decodeCounters, 0x89: decodeTemperature, 0xff: decodeError };
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const bytes = mutate(i % 2 ? requestFrames : responses, r);
      try {
        const frames = new FrameDecoder(1 << 20).push(bytes);
        for (const f of frames) {
          if (i % 2) decodeRequest(f);
          else (responseDecoders[f.type] ?? decodeRequest)(f);
        }
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(2500);
  });

  it('the server answers 3,000 malformed streams with ERROR frames and keeps serving', async () => {
    const r = rng(2);
    const driver = device();
    const codes = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const out: Uint8Array[] = [];
      const stream = memoryStream((c) => out.push(c));
      const served = serveStream(driver, stream);
      stream.push(HELLO);
      stream.push(mutate(requestFrames, r));
      stream.push(null); // the peer hangs up: a truncated frame must not keep the server waiting
      await served;
      const frames = new FrameDecoder(1 << 20).push(Buffer.concat(out));
      // HEALTH is answered out of order, so the HELLO answer need not come first.
      expect(frames.filter((f) => f.id === 1000).map((f) => f.type)).toEqual([MessageType.HELLO | RESPONSE_BIT]);
      for (const f of frames.filter((g) => g.id !== 1000)) {
        if (f.type !== MessageType.ERROR) { expect(f.type & RESPONSE_BIT).toBeTruthy(); continue; }
        const { code } = decodeError(f);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    // Every kind of refusal occurred.
    for (const code of [ErrorCode.BAD_FRAME, ErrorCode.TOO_LARGE, ErrorCode.UNKNOWN_TYPE, ErrorCode.BAD_PAYLOAD]) expect(codes.get(code)).toBeGreaterThan(10);
    // The same device still serves a well-formed session.
    const out: Uint8Array[] = [];
    const stream = memoryStream((c) => out.push(c));
    const served = serveStream(driver, stream);
    for (const f of [HELLO, requestFrames[1]!, requestFrames[2]!]) stream.push(f);
    stream.push(null);
    await served;
    const frames = new FrameDecoder(1 << 20).push(Buffer.concat(out));
    expect(frames.map((f) => f.type)).toEqual([0x81, 0x82, 0x83]);
    expect(decodeMvmResult(frames[2]!)).toMatchObject({ batch: 2, cols: 3 });
  });

  it('the client turns 2,000 malformed answers into AcceleratorErrors and stays usable', async () => {
    const r = rng(3);
    const caps = encodeCapabilities({ driver: 'fuzz', profile: 'x', tileRows: 8, tileCols: 8, tiles: 4, dacBits: 8, adcBits: 8, maxPayload: 1 << 20, bootId: '11'.repeat(16) });
    const answers: Record<number, Uint8Array> = {
      [MessageType.HEALTH]: encodeHealth({ state: 'ok' }),
      [MessageType.COUNTERS]: encodeCounters([{ tileId: 0, mvms: 1, macs: 2, dacConversions: 3, adcConversions: 4, cellsProgrammed: 5 }]),
      [MessageType.TEMPERATURE]: encodeTemperature(300),
      [MessageType.MVM]: encodeMvmResult(1, 8, new Float32Array(8)),
      [MessageType.READ_CONDUCTANCES]: encodeConductances({ rows: 1, cols: 1, gPlus: new Float32Array(1), gMinus: new Float32Array(1) }),
    };
    let garble = true;
    // A fake device: answers HELLO properly, the next request with a mutated answer, then hangs up.
    const transport = async (): Promise<Duplex> => {
      const decoder = new FrameDecoder(1 << 20);
      const stream: Duplex = memoryStream((chunk) => {
        for (const f of decoder.push(chunk)) {
          if (f.type === MessageType.HELLO) { stream.push(encodeFrame(0x81, f.id, caps)); continue; }
          const good = encodeFrame(f.type | RESPONSE_BIT, f.id, answers[f.type]);
          stream.push(garble ? mutate([good], r) : good);
          if (garble) stream.push(null);
        }
      });
      return stream;
    };
    const client = await RemoteCrossbarClient.connect(transport, { timeoutMs: 2000 });
    const calls = [() => client.health(), () => client.counters(), () => client.temperature(), () => client.mvm(0, new Float32Array(8), 1), () => client.readConductances(0)];
    let failed = 0;
    for (let i = 0; i < 2000; i++) {
      try {
        await calls[i % calls.length]!();
      } catch (e) {
        expect(e).toBeInstanceOf(AcceleratorError);
        expect(['protocol-error', 'connection-lost', 'driver-error']).toContain((e as AcceleratorError).kind);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(1500);
    garble = false;
    expect(await client.health()).toEqual({ state: 'ok' });
    expect(Array.from(await client.mvm(0, new Float32Array(8), 1))).toEqual(new Array(8).fill(0));
    await client.dispose();
  });

  it('property (fast-check): any frame of any type decodes or is refused with a ProtocolError; a decoded MVM is self-consistent', () => {
    const types = fc.oneof(fc.constantFrom(...Object.values(MessageType)), fc.integer({ min: 0, max: 255 }));
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 96 }),
      // Plausible headers of MVM/PROGRAM with absurd counts, then a few floats.
      fc.tuple(fc.constantFrom(0, 1, 3, 4, 2 ** 16, 2 ** 31, 2 ** 32 - 1), fc.constantFrom(0, 1, 2, 4, 2 ** 30, 2 ** 32 - 1), fc.constantFrom(0, 1, 4, 2 ** 32 - 1), fc.uint8Array({ maxLength: 64 }))
        .map(([a, b, c, rest]) => { const v = new DataView(new ArrayBuffer(12)); v.setUint32(0, a, true); v.setUint32(4, b, true); v.setUint32(8, c, true); return Uint8Array.from([...new Uint8Array(v.buffer), ...rest]); }),
    );
    fc.assert(fc.property(types, fc.nat(), payload, (type, id, bytes) => {
      let request: Request;
      try {
        const frames = new FrameDecoder(1 << 20).push(encodeFrame(type, id, bytes));
        expect(frames).toHaveLength(1);
        request = decodeRequest(frames[0]!);
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        return;
      }
      if (request.type === MessageType.MVM) expect(request.x.length).toBe(request.batch * request.rows);
      if (request.type === MessageType.PROGRAM) expect(request.weights.length).toBe(request.rows * request.cols);
    }), { numRuns: 2000 });
  });

  it('an MVM whose rows differ from the programmed rows is refused (regression: it was answered)', async () => {
    const out: Uint8Array[] = [];
    const stream = memoryStream((c) => out.push(c));
    const served = serveStream(device(), stream);
    const mvm = (id: number, rows: number): Uint8Array => encodeFrame(MessageType.MVM, id, encodeRequest({ type: MessageType.MVM, tileId: 0, batch: 1, rows, x: new Float32Array(rows).fill(0.5) }));
    for (const f of [HELLO, requestFrames[1]!, mvm(11, 3), mvm(12, 5), mvm(13, 4)]) stream.push(f); // programmed with 4 rows
    stream.push(null);
    await served;
    const byId = new Map(new FrameDecoder(1 << 20).push(Buffer.concat(out)).map((f) => [f.id, f]));
    for (const [id, rows] of [[11, 3], [12, 5]] as const) {
      expect(byId.get(id)!.type).toBe(MessageType.ERROR);
      expect(decodeError(byId.get(id)!)).toEqual({ code: ErrorCode.BAD_PAYLOAD, message: `tile 0 is programmed with 4 rows; the MVM sends ${rows}` });
    }
    expect(decodeMvmResult(byId.get(13)!)).toMatchObject({ batch: 1, cols: 3 });
  });

  describe('against the real accel-emulator process', () => {
    const proc = new DeviceProcess(tempSocketPath(), ['--profile', 'pcm', '--seed', '2', '--max-payload', '65536']);
    afterAll(() => proc.kill());

    it('survives 500 malformed and oversized connections and still computes correctly', async () => {
      await proc.start();
      const r = rng(4);
      const send = (bytes: Uint8Array): Promise<number> => new Promise((resolve) => {
        const s = createConnection(proc.socket);
        let received = 0;
        s.on('data', (d) => { received += d.length; });
        s.on('error', () => undefined);
        s.on('close', () => resolve(received));
        s.end(Buffer.concat([HELLO, bytes]));
      });
      const oversized = encodeFrame(MessageType.PROGRAM, 7, new Uint8Array(70_000)); // above --max-payload
      for (let i = 0; i < 500; i++) expect(await send(i % 50 === 0 ? oversized : mutate(requestFrames, r))).toBeGreaterThan(0);
      expect(proc.alive).toBe(true);
      const client = await RemoteCrossbarClient.connect(unixSocketTransport(proc.socket));
      const local = new CrossbarEmulator('pcm', { seed: 2 });
      const w = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
      for (const d of [client, local]) await d.program(3, w, 8, 8);
      expect(Array.from(await client.mvm(3, w.subarray(0, 16), 2))).toEqual(Array.from(await local.mvm(3, w.subarray(0, 16), 2)));
      await client.dispose();
    });
  });
});
