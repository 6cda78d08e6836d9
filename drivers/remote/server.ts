/**
 * Serves any CrossbarDriver (normally the emulator) over the remote protocol, one connection at a
 * time per stream: on a Unix socket for many clients, or on stdio for a parent process. Requests
 * of a connection run one after another, in order, as a device command queue does. Malformed
 * input gets an ERROR frame; a frame whose header cannot be trusted also closes that connection.
 * Nothing a peer sends can throw out of here.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type { CrossbarDriver } from '../../runtime/accelerator.js';
import { FrameDecoder } from './frame-decoder.js';
import {
  ABSOLUTE_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD, ErrorCode, MessageType, ProtocolError, RESPONSE_BIT,
  decodeRequest, encodeCapabilities, encodeConductances, encodeCounters, encodeError, encodeFrame, encodeHealth,
  encodeMvmResult, encodeTemperature, type Frame, type Request,
} from './protocol.js';

export interface ServeOptions {
  /** Largest request payload accepted (announced in CAPABILITIES). */
  maxPayload?: number;
  /** Identifies this device process; a new one means every tile was lost. */
  bootId?: string;
  /** Overrides the driver's health report (e.g. a fault injected into the emulator process). */
  healthOverride?: () => { state: 'ok' | 'degraded' | 'unhealthy'; detail?: string } | undefined;
  /** Called for every protocol or device error answered (for logs); never required. */
  onError?: (e: Error) => void;
}

export interface ServerStats { connections: number; requests: number; errors: number }

export function newBootId(): string {
  return randomBytes(16).toString('hex');
}

/** Serves one byte stream until it ends. Returns when the stream has closed. */
export function serveStream(driver: CrossbarDriver, stream: Duplex, options: ServeOptions = {}, stats: ServerStats = { connections: 0, requests: 0, errors: 0 }): Promise<void> {
  const maxPayload = Math.min(options.maxPayload ?? DEFAULT_MAX_PAYLOAD, ABSOLUTE_MAX_PAYLOAD);
  const bootId = options.bootId ?? newBootId();
  const decoder = new FrameDecoder(maxPayload);
  let greeted = false; // a HELLO frame has arrived (set on receipt, so out-of-band HEALTH sees it)
  let closing = false;
  let chain: Promise<void> = Promise.resolve();
  stats.connections++;

  const send = (type: number, id: number, payload?: Uint8Array): void => {
    if (closing || stream.destroyed || !stream.writable) return;
    stream.write(encodeFrame(type, id, payload));
  };
  const sendError = (e: Error, id: number): void => {
    stats.errors++;
    options.onError?.(e);
    const code = e instanceof ProtocolError ? e.code : ErrorCode.DEVICE_ERROR;
    send(MessageType.ERROR, id, encodeError(code, e.message));
  };

  const handle = async (frame: Frame): Promise<void> => {
    stats.requests++;
    try {
      const request = decodeRequest(frame);
      if (!greeted) throw new ProtocolError(ErrorCode.NOT_READY, 'send HELLO first', frame.id);
      const payload = await execute(driver, request, { maxPayload, bootId, healthOverride: options.healthOverride });
      send(frame.type | RESPONSE_BIT, frame.id, payload);
    } catch (e) {
      sendError(e instanceof Error ? e : new Error(String(e)), frame.id);
    }
  };

  return new Promise<void>((resolve) => {
    stream.on('data', (chunk: Uint8Array) => {
      if (closing) return;
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        // The length field or header is garbage: answer once, then stop trusting this stream.
        const err = e as ProtocolError;
        chain = chain.then(() => {
          sendError(err, err.requestId);
          closing = true;
          stream.end();
        });
        return;
      }
      for (const f of frames) {
        if (f.type === MessageType.HELLO) greeted = true;
        // HEALTH is answered at once, out of order: a device busy programming still reports its health.
        if (f.type === MessageType.HEALTH) void handle(f);
        else chain = chain.then(() => handle(f));
      }
    });
    stream.on('error', () => { closing = true; });
    stream.on('close', () => { closing = true; resolve(); });
    stream.on('end', () => { chain.then(() => { if (!closing) stream.end(); }); });
  });
}

/**
 * Rows each tile of a served driver holds, per driver (its connections share the device): an MVM
 * must send exactly these (PROTOCOL.md), whatever a driver would make of a longer or shorter vector.
 */
const programmedRows = new WeakMap<CrossbarDriver, Map<number, number>>();

function rowsOf(driver: CrossbarDriver): Map<number, number> {
  let rows = programmedRows.get(driver);
  if (!rows) programmedRows.set(driver, rows = new Map());
  return rows;
}

async function execute(driver: CrossbarDriver, r: Request, ctx: { maxPayload: number; bootId: string; healthOverride: ServeOptions['healthOverride'] }): Promise<Uint8Array | undefined> {
  switch (r.type) {
    case MessageType.HELLO: return encodeCapabilities({ ...driver.info(), maxPayload: ctx.maxPayload, bootId: ctx.bootId });
    case MessageType.PROGRAM: {
      await driver.program(r.tileId, r.weights, r.rows, r.cols);
      rowsOf(driver).set(r.tileId, r.rows);
      return undefined;
    }
    case MessageType.MVM: {
      const rows = rowsOf(driver).get(r.tileId);
      if (rows !== undefined && r.rows !== rows) throw new ProtocolError(ErrorCode.BAD_PAYLOAD, `tile ${r.tileId} is programmed with ${rows} rows; the MVM sends ${r.rows}`);
      const y = await driver.mvm(r.tileId, r.x, r.batch);
      if (y.length % r.batch !== 0) throw new Error(`device returned ${y.length} values for ${r.batch} vectors`);
      return encodeMvmResult(r.batch, y.length / r.batch, y);
    }
    case MessageType.CALIBRATE: await driver.calibrate(r.tileId); return undefined;
    case MessageType.SET_AGE: await driver.setAge(r.seconds); return undefined;
    case MessageType.READ_CONDUCTANCES: return encodeConductances(await driver.readConductances(r.tileId));
    case MessageType.HEALTH: return encodeHealth(ctx.healthOverride?.() ?? await driver.health());
    case MessageType.COUNTERS: return encodeCounters(await driver.counters());
    case MessageType.TEMPERATURE: return encodeTemperature(await driver.temperature());
  }
}

export interface UnixServer {
  readonly path: string;
  readonly bootId: string;
  readonly stats: ServerStats;
  close(): Promise<void>;
}

/**
 * A socket file left by a killed process is removed; one with a live listener, or a path that is
 * not a socket at all, is an error (never unlink what is not ours to replace).
 */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path}: another device process is already listening there`);
  await unlink(path);
}

/** Listens on a Unix socket (a stale socket file from a killed process is replaced). */
export async function listenUnix(path: string, driver: CrossbarDriver, options: ServeOptions = {}): Promise<UnixServer> {
  const bootId = options.bootId ?? newBootId();
  const stats: ServerStats = { connections: 0, requests: 0, errors: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void serveStream(driver, socket, { ...options, bootId }, stats);
  });
  await removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  server.on('error', (e) => options.onError?.(e));
  return {
    path, bootId, stats,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
