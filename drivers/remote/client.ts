/**
 * A CrossbarDriver that talks to a device process over the remote protocol. Every request has a
 * timeout; a timeout, a broken connection or bytes that are not protocol fail the pending requests
 * with an AcceleratorError (never a hang) and drop the connection. The next call reconnects, so a
 * restarted device process is picked up on demand; its new boot id tells that its tiles were lost.
 */
import type { Duplex } from 'node:stream';
import type { AcceleratorHealth, AcceleratorInfo, ConductanceReadout, CrossbarDriver, TileCounters } from '../../runtime/accelerator.js';
import { AcceleratorError, type FailureKind } from '../../runtime/scheduler/failure.js';
import { FrameDecoder } from './frame-decoder.js';
import {
  DEFAULT_MAX_PAYLOAD, ErrorCode, MessageType, RESPONSE_BIT, decodeCapabilities, decodeConductances,
  decodeCounters, decodeEmpty, decodeError, decodeHealth, decodeMvmResult, decodeTemperature, encodeFrame, encodeRequest,
  errorName, type Capabilities, type Frame, type Request,
} from './protocol.js';
import type { Transport } from './transport.js';

export interface RemoteClientOptions {
  /** Per request, including connecting and HELLO (ms). */
  timeoutMs?: number;
  /**
   * For PROGRAM, CALIBRATE and READ_CONDUCTANCES, which write or read whole arrays (a real device
   * programs with write-verify cycles): default 10 s, never less than timeoutMs.
   */
  programTimeoutMs?: number;
  /** Largest response payload accepted. */
  maxPayload?: number;
}

export interface RemoteClientStats {
  connects: number;
  disconnects: number;
  timeouts: number;
  requests: number;
  /** Reconnects that found a different device process (its tiles were lost). */
  restartsSeen: number;
  connected: boolean;
  bootId: string;
}

interface Pending { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; expect: number }

/** One live byte stream and its in-flight requests. */
class Connection {
  readonly #pending = new Map<number, Pending>();
  readonly #decoder: FrameDecoder;
  #nextId = 1;
  #dead: AcceleratorError | undefined;

  constructor(private readonly stream: Duplex, maxPayload: number, private readonly onDead: (c: Connection, e: AcceleratorError) => void) {
    this.#decoder = new FrameDecoder(maxPayload);
    stream.on('data', (chunk: Uint8Array) => this.#receive(chunk));
    stream.on('error', (e) => this.fail(new AcceleratorError('connection-lost', `device connection failed: ${e.message}`)));
    stream.on('end', () => this.fail(new AcceleratorError('connection-lost', 'device closed the connection')));
    stream.on('close', () => this.fail(new AcceleratorError('connection-lost', 'device connection closed')));
  }

  get alive(): boolean {
    return !this.#dead;
  }

  request(type: number, payload: Uint8Array, timeoutMs: number): Promise<Frame> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise<Frame>((resolve, reject) => {
      // Confirmed a loop turn later, after pending socket data was read: a blocked event loop is
      // not a silent device. An unresponsive device is not trusted with the other requests either.
      const timer = setTimeout(() => setImmediate(() => {
        if (this.#pending.has(id)) this.fail(new AcceleratorError('timeout', `device did not answer request ${id} (${typeName(type)}) within ${timeoutMs} ms`));
      }), timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, expect: type | RESPONSE_BIT });
      this.stream.write(encodeFrame(type, id, payload));
    });
  }

  fail(e: AcceleratorError): void {
    if (this.#dead) return;
    this.#dead = e;
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(e); }
    this.#pending.clear();
    this.stream.destroy();
    this.onDead(this, e);
  }

  #receive(chunk: Uint8Array): void {
    if (this.#dead) return;
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.fail(new AcceleratorError('protocol-error', `device sent an invalid frame: ${(e as Error).message}`));
      return;
    }
    for (const f of frames) {
      const p = this.#pending.get(f.id);
      if (!p) {
        if (f.type === MessageType.ERROR) this.fail(deviceError(f)); // connection-level error (id 0)
        continue; // an answer nobody waits for: ignore
      }
      this.#pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.type === MessageType.ERROR) p.reject(deviceError(f));
      else if (f.type === p.expect) p.resolve(f);
      else {
        const e = new AcceleratorError('protocol-error', `device answered request ${f.id} with type 0x${f.type.toString(16)}, expected 0x${p.expect.toString(16)}`);
        p.reject(e);
        this.fail(e); // the two sides no longer agree on what is what
      }
    }
  }
}

function deviceError(f: Frame): AcceleratorError {
  try {
    const { code, message } = decodeError(f);
    const kind: FailureKind = code === ErrorCode.DEVICE_ERROR ? 'driver-error' : 'protocol-error';
    return new AcceleratorError(kind, `device error ${errorName(code)}: ${message}`);
  } catch (e) {
    return new AcceleratorError('protocol-error', `device sent a malformed ERROR: ${(e as Error).message}`);
  }
}

const SLOW_REQUESTS = new Set<number>([MessageType.PROGRAM, MessageType.CALIBRATE, MessageType.READ_CONDUCTANCES]);

const typeName = (t: number): string => Object.entries(MessageType).find(([, v]) => v === t)?.[0] ?? `0x${t.toString(16)}`;

export class RemoteCrossbarClient implements CrossbarDriver {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #programTimeoutMs: number;
  readonly #maxPayload: number;
  #caps: Capabilities;
  #conn: Connection | undefined;
  #connecting: Promise<Connection> | undefined;
  #closed = false;
  /** Shapes of the tiles programmed through this client, to size MVM chunks. */
  readonly #tiles = new Map<number, { rows: number; cols: number }>();
  readonly #stats = { connects: 0, disconnects: 0, timeouts: 0, requests: 0, restartsSeen: 0 };

  private constructor(transport: Transport, caps: Capabilities, conn: Connection | undefined, options: Required<RemoteClientOptions>) {
    this.#transport = transport;
    this.#caps = caps;
    this.#conn = conn;
    this.#timeoutMs = options.timeoutMs;
    this.#programTimeoutMs = Math.max(options.timeoutMs, options.programTimeoutMs);
    this.#maxPayload = options.maxPayload;
  }

  /** Connects and reads the device's capabilities (info() is synchronous afterwards). */
  static async connect(transport: Transport, options: RemoteClientOptions = {}): Promise<RemoteCrossbarClient> {
    const opts = { timeoutMs: options.timeoutMs ?? 2000, programTimeoutMs: options.programTimeoutMs ?? 10_000, maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD };
    const client = new RemoteCrossbarClient(transport, undefined as unknown as Capabilities, undefined, opts);
    await client.#connection();
    return client;
  }

  info(): AcceleratorInfo {
    const { maxPayload: _m, bootId: _b, ...info } = this.#caps;
    return { ...info };
  }

  get bootId(): string {
    return this.#caps.bootId;
  }

  stats(): RemoteClientStats {
    return { ...this.#stats, connected: !!this.#conn?.alive, bootId: this.#caps.bootId };
  }

  async program(tileId: number, weights: Float32Array, rows: number, cols: number): Promise<void> {
    if (weights.length !== rows * cols) throw new Error(`weights hold ${weights.length} values, a ${rows}×${cols} block needs ${rows * cols}`);
    await this.#ask({ type: MessageType.PROGRAM, tileId, rows, cols, weights }, (f) => decodeEmpty(f, 'PROGRAM'));
    this.#tiles.set(tileId, { rows, cols });
  }

  async mvm(tileId: number, x: Float32Array, batch: number): Promise<Float32Array> {
    const shape = this.#tiles.get(tileId);
    const rows = shape?.rows ?? x.length / batch;
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`tile ${tileId}: ${x.length} values are not ${batch} whole input vectors`);
    // Split the batch so that neither the request nor the answer exceeds a side's frame limit.
    const perVector = Math.max(rows, shape?.cols ?? rows) * 4;
    const chunk = Math.max(1, Math.floor((Math.min(this.#caps.maxPayload, this.#maxPayload) - 16) / perVector));
    if (batch <= chunk) return this.#mvmChunk(tileId, x.subarray(0, batch * rows), batch, rows);
    const parts: Float32Array[] = [];
    for (let b0 = 0; b0 < batch; b0 += chunk) {
      const n = Math.min(chunk, batch - b0);
      parts.push(await this.#mvmChunk(tileId, x.subarray(b0 * rows, (b0 + n) * rows), n, rows));
    }
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) { out.set(p, off); off += p.length; }
    return out;
  }

  async #mvmChunk(tileId: number, x: Float32Array, batch: number, rows: number): Promise<Float32Array> {
    const r = await this.#ask({ type: MessageType.MVM, tileId, batch, rows, x }, decodeMvmResult);
    const cols = this.#tiles.get(tileId)?.cols;
    if (r.batch !== batch || (cols !== undefined && r.cols !== cols)) {
      throw new AcceleratorError('protocol-error', `tile ${tileId}: asked for ${batch}×${cols ?? '?'} outputs, device sent ${r.batch}×${r.cols}`);
    }
    return r.y;
  }

  async calibrate(tileId: number): Promise<void> {
    await this.#ask({ type: MessageType.CALIBRATE, tileId }, (f) => decodeEmpty(f, 'CALIBRATE'));
  }

  async readConductances(tileId: number): Promise<ConductanceReadout> {
    return this.#ask({ type: MessageType.READ_CONDUCTANCES, tileId }, decodeConductances);
  }

  async setAge(seconds: number): Promise<void> {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new Error(`device age must be a finite number of seconds ≥ 0, got ${seconds}`);
    await this.#ask({ type: MessageType.SET_AGE, seconds }, (f) => decodeEmpty(f, 'SET_AGE'));
  }

  async temperature(): Promise<number> {
    return this.#ask({ type: MessageType.TEMPERATURE }, decodeTemperature);
  }

  async health(): Promise<AcceleratorHealth> {
    return this.#ask({ type: MessageType.HEALTH }, decodeHealth);
  }

  async counters(): Promise<TileCounters[]> {
    return this.#ask({ type: MessageType.COUNTERS }, decodeCounters);
  }

  /** Closes the connection; later calls fail. The device process keeps its state. */
  async dispose(): Promise<void> {
    this.#closed = true;
    this.#conn?.fail(new AcceleratorError('connection-lost', 'client disposed'));
    this.#conn = undefined;
  }

  /** Drops the current connection, as a network failure would (the next call reconnects). */
  disconnect(): void {
    this.#conn?.fail(new AcceleratorError('connection-lost', 'disconnected by the client'));
  }

  /** Sends a request and decodes its answer; a malformed answer is a protocol error, not a crash. */
  async #ask<T>(request: Request, decode: (f: Frame) => T): Promise<T> {
    const conn = await this.#connection();
    this.#stats.requests++;
    let frame: Frame;
    try {
      frame = await conn.request(request.type, encodeRequest(request), SLOW_REQUESTS.has(request.type) ? this.#programTimeoutMs : this.#timeoutMs);
    } catch (e) {
      if (e instanceof AcceleratorError && e.kind === 'timeout') this.#stats.timeouts++;
      throw e;
    }
    try {
      return decode(frame);
    } catch (e) {
      throw new AcceleratorError('protocol-error', `device sent a malformed answer: ${(e as Error).message}`);
    }
  }

  #connection(): Promise<Connection> {
    if (this.#closed) return Promise.reject(new AcceleratorError('connection-lost', 'remote accelerator client is disposed'));
    if (this.#conn?.alive) return Promise.resolve(this.#conn);
    this.#connecting ??= this.#open().finally(() => { this.#connecting = undefined; });
    return this.#connecting;
  }

  async #open(): Promise<Connection> {
    const stream = await withTimeout(this.#transport(), this.#timeoutMs, 'connecting to the device', (late) => late.destroy()).catch((e: Error) => {
      throw e instanceof AcceleratorError ? e : new AcceleratorError('connection-lost', `cannot reach the device: ${e.message}`);
    });
    const conn = new Connection(stream, this.#maxPayload, (c) => {
      if (this.#conn === c) { this.#conn = undefined; this.#stats.disconnects++; }
    });
    let caps: Capabilities;
    try {
      const hello = await conn.request(MessageType.HELLO, encodeRequest({ type: MessageType.HELLO, maxPayload: this.#maxPayload }), this.#timeoutMs);
      caps = decodeCapabilities(hello);
    } catch (e) {
      const err = e instanceof AcceleratorError ? e : new AcceleratorError('protocol-error', `bad HELLO answer: ${(e as Error).message}`);
      conn.fail(err);
      if (err.kind === 'timeout') this.#stats.timeouts++;
      throw err;
    }
    const before = this.#caps;
    if (before && (caps.tileRows !== before.tileRows || caps.tileCols !== before.tileCols || caps.tiles !== before.tiles)) {
      const err = new AcceleratorError('driver-error', `the device changed geometry on reconnect (${before.tiles}×${before.tileRows}×${before.tileCols} → ${caps.tiles}×${caps.tileRows}×${caps.tileCols})`);
      conn.fail(err);
      throw err;
    }
    if (before && caps.bootId !== before.bootId) {
      this.#stats.restartsSeen++;
      this.#tiles.clear();
    }
    this.#caps = caps;
    this.#conn = conn;
    this.#stats.connects++;
    return conn;
  }
}

/** Rejects after `ms`; a value that arrives later is handed to `late` (e.g. to close a stream). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, late: (v: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    let settled = false;
    const t = setTimeout(() => setImmediate(() => {
      if (settled) return;
      expired = true;
      reject(new AcceleratorError('timeout', `${what} took longer than ${ms} ms`));
    }), ms);
    p.then((v) => { settled = true; clearTimeout(t); if (expired) late(v); else resolve(v); }, (e) => { settled = true; clearTimeout(t); reject(e); });
  });
}
