/**
 * The edgerun remote-accelerator protocol, version 1 (specified in PROTOCOL.md): length-prefixed
 * binary frames, a 16-byte little-endian header and a per-type payload. This module only encodes
 * and decodes; it never touches a socket. Every decoder checks lengths exactly and throws a
 * ProtocolError (never a RangeError from a DataView) so either side can answer malformed input.
 */
import { PERIPHERY_OPS, type AcceleratorHealth, type AcceleratorInfo, type ConductanceReadout, type HealthState, type PeripheryOp, type TileCounters } from '../../runtime/accelerator.js';

export const MAGIC = 0x42585245; // "ERXB" read as a little-endian uint32
export const VERSION = 1;
export const HEADER_BYTES = 16;
/** Default largest payload either side accepts (each side announces its own in HELLO/CAPABILITIES). */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
/** No implementation may announce more than this: the length field is trusted only up to here. */
export const ABSOLUTE_MAX_PAYLOAD = 256 * 1024 * 1024;

export const MessageType = {
  HELLO: 0x01,
  PROGRAM: 0x02,
  MVM: 0x03,
  CALIBRATE: 0x04,
  SET_AGE: 0x05,
  READ_CONDUCTANCES: 0x06,
  HEALTH: 0x07,
  COUNTERS: 0x08,
  TEMPERATURE: 0x09,
  ERROR: 0xff,
} as const;
export type RequestType = Exclude<(typeof MessageType)[keyof typeof MessageType], 0xff>;
/** A response carries its request's type with the high bit set (CAPABILITIES = 0x81, ...). */
export const RESPONSE_BIT = 0x80;

export const ErrorCode = {
  BAD_FRAME: 1, // header unusable (magic, version, flags): the connection is closed after this
  TOO_LARGE: 2, // payload length above the receiver's limit: the connection is closed after this
  UNKNOWN_TYPE: 3,
  BAD_PAYLOAD: 4, // payload length or values do not match the message type
  DEVICE_ERROR: 5, // the device refused or failed the operation
  NOT_READY: 6, // a request before HELLO
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

const ERROR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));
export const errorName = (code: number): string => ERROR_NAMES[code] ?? `code ${code}`;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** Whether the byte stream can still be trusted after this error (false: framing is lost). */
  readonly fatal: boolean;
  constructor(readonly code: ErrorCodeValue, message: string, readonly requestId = 0, fatal = code === ErrorCode.BAD_FRAME || code === ErrorCode.TOO_LARGE) {
    super(message);
    this.fatal = fatal;
  }
}

export interface Frame {
  type: number;
  id: number;
  payload: Uint8Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Frame header

export function encodeFrame(type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint8(4, VERSION);
  v.setUint8(5, type);
  v.setUint16(6, 0, true);
  v.setUint32(8, id >>> 0, true);
  v.setUint32(12, payload.length, true);
  out.set(payload, HEADER_BYTES);
  return out;
}

/** Checks a 16-byte header; returns the request id and payload length or throws a fatal ProtocolError. */
export function decodeHeader(bytes: Uint8Array, maxPayload: number): { type: number; id: number; length: number } {
  const v = view(bytes);
  const id = v.getUint32(8, true);
  if (v.getUint32(0, true) !== MAGIC) throw new ProtocolError(ErrorCode.BAD_FRAME, 'bad magic: not an edgerun accelerator frame', 0);
  const version = v.getUint8(4);
  if (version !== VERSION) throw new ProtocolError(ErrorCode.BAD_FRAME, `unsupported protocol version ${version} (this side speaks ${VERSION})`, id);
  if (v.getUint16(6, true) !== 0) throw new ProtocolError(ErrorCode.BAD_FRAME, 'reserved flags must be 0', id);
  const length = v.getUint32(12, true);
  if (length > maxPayload) throw new ProtocolError(ErrorCode.TOO_LARGE, `payload of ${length} bytes exceeds the limit of ${maxPayload}`, id);
  return { type: v.getUint8(5), id, length };
}

// ---------------------------------------------------------------------------------------------
// Payload builders and readers

class Writer {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #off = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }
  u8(x: number): this { this.#view.setUint8(this.#off, x); this.#off += 1; return this; }
  u16(x: number): this { this.#view.setUint16(this.#off, x, true); this.#off += 2; return this; }
  u32(x: number): this { this.#view.setUint32(this.#off, x, true); this.#off += 4; return this; }
  f64(x: number): this { this.#view.setFloat64(this.#off, x, true); this.#off += 8; return this; }
  raw(b: Uint8Array): this { this.bytes.set(b, this.#off); this.#off += b.length; return this; }
  f32s(a: Float32Array): this {
    if (LITTLE_ENDIAN) this.raw(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    else for (let i = 0; i < a.length; i++) { this.#view.setFloat32(this.#off, a[i]!, true); this.#off += 4; }
    return this;
  }
  str(s: Uint8Array): this { return this.u16(s.length).raw(s); }
}

class Reader {
  readonly #view: DataView;
  #off = 0;
  constructor(private readonly bytes: Uint8Array, private readonly what: string, private readonly id: number) {
    this.#view = view(bytes);
  }
  #need(n: number): void {
    if (this.#off + n > this.bytes.length) throw this.fail(`truncated (needs ${this.#off + n} bytes, has ${this.bytes.length})`);
  }
  fail(reason: string): ProtocolError {
    return new ProtocolError(ErrorCode.BAD_PAYLOAD, `${this.what}: ${reason}`, this.id);
  }
  u8(): number { this.#need(1); return this.#view.getUint8(this.#off++); }
  u16(): number { this.#need(2); const x = this.#view.getUint16(this.#off, true); this.#off += 2; return x; }
  u32(): number { this.#need(4); const x = this.#view.getUint32(this.#off, true); this.#off += 4; return x; }
  f64(): number { this.#need(8); const x = this.#view.getFloat64(this.#off, true); this.#off += 8; return x; }
  raw(n: number): Uint8Array { this.#need(n); const b = this.bytes.subarray(this.#off, this.#off + n); this.#off += n; return b; }
  /** n float32 values, copied into an aligned array. */
  f32s(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n * 4 > this.bytes.length - this.#off) throw this.fail(`${n} float32 values do not fit the ${this.bytes.length - this.#off} remaining bytes`);
    const out = new Float32Array(n);
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(this.raw(n * 4));
    else { for (let i = 0; i < n; i++) out[i] = this.#view.getFloat32(this.#off + i * 4, true); this.#off += n * 4; }
    return out;
  }
  str(): string {
    const n = this.u16();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.raw(n));
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw this.fail('string is not valid UTF-8');
    }
  }
  /** True when every byte was read (an optional trailing field is absent). */
  get atEnd(): boolean { return this.#off === this.bytes.length; }
  end(): void {
    if (this.#off !== this.bytes.length) throw this.fail(`${this.bytes.length - this.#off} unexpected trailing bytes`);
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const utf8 = (s: string, max = 0xffff): Uint8Array => {
  const b = new TextEncoder().encode(s);
  return b.length <= max ? b : b.subarray(0, max);
};

// ---------------------------------------------------------------------------------------------
// Requests

export type Request =
  | { type: typeof MessageType.HELLO; maxPayload: number }
  | { type: typeof MessageType.PROGRAM; tileId: number; rows: number; cols: number; weights: Float32Array }
  | { type: typeof MessageType.MVM; tileId: number; batch: number; rows: number; x: Float32Array }
  | { type: typeof MessageType.CALIBRATE; tileId: number }
  | { type: typeof MessageType.SET_AGE; seconds: number }
  | { type: typeof MessageType.READ_CONDUCTANCES; tileId: number }
  | { type: typeof MessageType.HEALTH }
  | { type: typeof MessageType.COUNTERS }
  | { type: typeof MessageType.TEMPERATURE };

export function encodeRequest(r: Request): Uint8Array {
  switch (r.type) {
    case MessageType.HELLO: return new Writer(4).u32(r.maxPayload).bytes;
    case MessageType.PROGRAM: return new Writer(12 + r.weights.byteLength).u32(r.tileId).u32(r.rows).u32(r.cols).f32s(r.weights).bytes;
    case MessageType.MVM: return new Writer(12 + r.x.byteLength).u32(r.tileId).u32(r.batch).u32(r.rows).f32s(r.x).bytes;
    case MessageType.CALIBRATE:
    case MessageType.READ_CONDUCTANCES: return new Writer(4).u32(r.tileId).bytes;
    case MessageType.SET_AGE: return new Writer(8).f64(r.seconds).bytes;
    default: return new Uint8Array(0);
  }
}

export function decodeRequest(frame: Frame): Request {
  const what = `request ${frame.id} (type 0x${frame.type.toString(16).padStart(2, '0')})`;
  const r = new Reader(frame.payload, what, frame.id);
  let out: Request;
  switch (frame.type) {
    case MessageType.HELLO: out = { type: frame.type, maxPayload: r.u32() }; break;
    case MessageType.PROGRAM: {
      const tileId = r.u32(); const rows = r.u32(); const cols = r.u32();
      if (rows < 1 || cols < 1) throw r.fail(`a ${rows}×${cols} block is empty`);
      out = { type: frame.type, tileId, rows, cols, weights: r.f32s(rows * cols) };
      break;
    }
    case MessageType.MVM: {
      const tileId = r.u32(); const batch = r.u32(); const rows = r.u32();
      if (batch < 1 || rows < 1) throw r.fail(`${batch} vectors of ${rows} is empty`);
      out = { type: frame.type, tileId, batch, rows, x: r.f32s(batch * rows) };
      break;
    }
    case MessageType.CALIBRATE: out = { type: frame.type, tileId: r.u32() }; break;
    case MessageType.READ_CONDUCTANCES: out = { type: frame.type, tileId: r.u32() }; break;
    case MessageType.SET_AGE: {
      const seconds = r.f64();
      if (!(seconds >= 0) || !Number.isFinite(seconds)) throw r.fail(`device age must be finite and ≥ 0, got ${seconds}`);
      out = { type: frame.type, seconds };
      break;
    }
    case MessageType.HEALTH: case MessageType.COUNTERS: case MessageType.TEMPERATURE: out = { type: frame.type }; break;
    default: throw new ProtocolError(ErrorCode.UNKNOWN_TYPE, `${what}: unknown request type`, frame.id);
  }
  r.end();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses

export interface Capabilities extends AcceleratorInfo {
  /** Largest payload the server accepts. */
  maxPayload: number;
  /** 16 random bytes (hex) chosen when the device process started: a change means all tiles were lost. */
  bootId: string;
}

const HEALTH_STATES: HealthState[] = ['ok', 'degraded', 'unhealthy'];
const bitsOut = (bits: number): number => (Number.isFinite(bits) ? bits : 0);
const bitsIn = (bits: number): number => (bits === 0 ? Infinity : bits);

export function encodeCapabilities(c: Capabilities): Uint8Array {
  const driver = utf8(c.driver);
  const profile = utf8(c.profile);
  const boot = hexBytes(c.bootId);
  const periphery = Object.entries(c.periphery ?? {}).map(([op, fj]) => [utf8(op), fj] as const);
  const w = new Writer(16 + 4 + 16 + 2 + driver.length + 2 + profile.length + 1 + periphery.reduce((n, [op]) => n + 2 + op.length + 8, 0))
    .u32(c.tileRows).u32(c.tileCols).u32(c.tiles).u8(bitsOut(c.dacBits)).u8(bitsOut(c.adcBits)).u16(0)
    .u32(c.maxPayload).raw(boot).str(driver).str(profile).u8(periphery.length);
  for (const [op, fj] of periphery) w.str(op).f64(fj);
  return w.bytes;
}

export function encodeHealth(h: AcceleratorHealth): Uint8Array {
  const detail = utf8(h.detail ?? '');
  return new Writer(1 + 2 + detail.length).u8(HEALTH_STATES.indexOf(h.state)).str(detail).bytes;
}

export function encodeMvmResult(batch: number, cols: number, y: Float32Array): Uint8Array {
  return new Writer(8 + y.byteLength).u32(batch).u32(cols).f32s(y).bytes;
}

export function encodeConductances(c: ConductanceReadout): Uint8Array {
  return new Writer(8 + c.gPlus.byteLength + c.gMinus.byteLength).u32(c.rows).u32(c.cols).f32s(c.gPlus).f32s(c.gMinus).bytes;
}

export function encodeCounters(counters: TileCounters[]): Uint8Array {
  const w = new Writer(4 + counters.length * 44).u32(counters.length);
  for (const c of counters) w.u32(c.tileId).f64(c.mvms).f64(c.macs).f64(c.dacConversions).f64(c.adcConversions).f64(c.cellsProgrammed);
  return w.bytes;
}

export const encodeTemperature = (kelvin: number): Uint8Array => new Writer(8).f64(kelvin).bytes;

export function encodeError(code: ErrorCodeValue, message: string): Uint8Array {
  const m = utf8(message, 4096);
  return new Writer(2 + 2 + m.length).u16(code).str(m).bytes;
}

export function decodeCapabilities(frame: Frame): Capabilities {
  const r = new Reader(frame.payload, 'CAPABILITIES', frame.id);
  const tileRows = r.u32(); const tileCols = r.u32(); const tiles = r.u32();
  const dacBits = bitsIn(r.u8()); const adcBits = bitsIn(r.u8()); r.u16();
  const maxPayload = r.u32();
  const bootId = [...r.raw(16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const driver = r.str(); const profile = r.str();
  // The digital periphery (optional: a server that sends none has only the per-column affine).
  const periphery: Partial<Record<PeripheryOp, number>> = {};
  for (let i = 0, n = r.atEnd ? 0 : r.u8(); i < n; i++) {
    const op = r.str(); const fj = r.f64();
    if (!(fj >= 0)) throw r.fail(`periphery operator ${op} has energy ${fj} fJ`);
    // Operators this runtime cannot fuse are of no use to it.
    if ((PERIPHERY_OPS as readonly string[]).includes(op)) periphery[op as PeripheryOp] = fj;
  }
  r.end();
  if (tileRows < 1 || tileCols < 1 || tiles < 1) throw r.fail(`a device of ${tiles} tiles of ${tileRows}×${tileCols} is empty`);
  if (maxPayload < 64) throw r.fail(`max payload ${maxPayload} is too small to be usable`);
  return { driver, profile, tileRows, tileCols, tiles, dacBits, adcBits, maxPayload, bootId, periphery };
}

export function decodeMvmResult(frame: Frame): { batch: number; cols: number; y: Float32Array } {
  const r = new Reader(frame.payload, 'MVM result', frame.id);
  const batch = r.u32(); const cols = r.u32();
  const y = r.f32s(batch * cols);
  r.end();
  return { batch, cols, y };
}

export function decodeConductances(frame: Frame): ConductanceReadout {
  const r = new Reader(frame.payload, 'CONDUCTANCES', frame.id);
  const rows = r.u32(); const cols = r.u32();
  const gPlus = r.f32s(rows * cols); const gMinus = r.f32s(rows * cols);
  r.end();
  return { rows, cols, gPlus, gMinus };
}

export function decodeHealth(frame: Frame): AcceleratorHealth {
  const r = new Reader(frame.payload, 'HEALTH', frame.id);
  const state = HEALTH_STATES[r.u8()];
  const detail = r.str();
  r.end();
  if (!state) throw r.fail('unknown health state');
  return detail ? { state, detail } : { state };
}

export function decodeCounters(frame: Frame): TileCounters[] {
  const r = new Reader(frame.payload, 'COUNTERS', frame.id);
  const n = r.u32();
  if (n * 44 !== frame.payload.length - 4) throw r.fail(`${n} tiles need ${n * 44} bytes, got ${frame.payload.length - 4}`);
  const out: TileCounters[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ tileId: r.u32(), mvms: r.f64(), macs: r.f64(), dacConversions: r.f64(), adcConversions: r.f64(), cellsProgrammed: r.f64() });
  }
  r.end();
  return out;
}

export function decodeTemperature(frame: Frame): number {
  const r = new Reader(frame.payload, 'TEMPERATURE', frame.id);
  const k = r.f64();
  r.end();
  return k;
}

export function decodeError(frame: Frame): { code: number; message: string } {
  const r = new Reader(frame.payload, 'ERROR', frame.id);
  const code = r.u16(); const message = r.str();
  r.end();
  return { code, message };
}

/** A response with an empty payload (PROGRAM, CALIBRATE, SET_AGE acknowledgements). */
export function decodeEmpty(frame: Frame, what: string): void {
  new Reader(frame.payload, what, frame.id).end();
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16) || 0;
  return out;
}
