/**
 * Moving a bundle to a device over MQTT, in chunks on `<device>/deploy/chunk/<deployment>` (QoS 1),
 * driven by the device: it reports on `deploy/status` the next chunk it needs (`transfer.next`)
 * after every window of chunks, and the pusher sends the next window. A device that restarts or
 * reconnects reports where it stands and the pusher continues from there.
 *
 * A chunk's payload is [uint32 big-endian index][32-byte sha256 of the data][data]: a damaged
 * chunk is refused on arrival. The whole bundle's sha256 and size come from the signed `deploy`
 * command and are checked before anything is installed; the bundle's own signature after that.
 */
import { createHash } from 'node:crypto';
import type { Storage } from '../ports.js';
import { DeployError } from './errors.js';
import { sha256Hex } from './manifest.js';

export const CHUNK_HEADER_BYTES = 4 + 32;
/** Chunks the pusher sends per status report of the device. */
export const CHUNK_WINDOW = 16;

export function encodeChunk(index: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + data.byteLength);
  new DataView(out.buffer).setUint32(0, index, false);
  out.set(createHash('sha256').update(data).digest(), 4);
  out.set(data, CHUNK_HEADER_BYTES);
  return out;
}

export function decodeChunk(payload: Uint8Array): { index: number; data: Uint8Array } {
  if (payload.byteLength < CHUNK_HEADER_BYTES) throw new DeployError('transfer', `a chunk of ${payload.byteLength} bytes is shorter than its header`);
  const index = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, false);
  const data = payload.subarray(CHUNK_HEADER_BYTES);
  const hash = createHash('sha256').update(data).digest();
  if (!hash.equals(payload.subarray(4, CHUNK_HEADER_BYTES))) throw new DeployError('transfer', `chunk ${index} does not match its sha256`);
  return { index, data };
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export interface IncomingBundle {
  sha256: string;
  size: number;
}

/**
 * The bytes of a bundle being received, in one Storage file (appended, fsync'd per step), so a
 * restarted device continues where it stopped. Used by the MQTT chunks and the HTTP download alike.
 */
export class IncomingFile {
  #length = 0;

  private constructor(private readonly storage: Storage, readonly file: string, readonly expect: IncomingBundle) {}

  /** Opens what an earlier run received (nothing when `fresh`). */
  static async open(storage: Storage, file: string, expect: IncomingBundle, fresh: boolean): Promise<IncomingFile> {
    const f = new IncomingFile(storage, file, expect);
    if (fresh) await storage.remove(file);
    else f.#length = (await storage.read(file))?.byteLength ?? 0;
    if (f.#length > expect.size) {
      await storage.remove(file);
      f.#length = 0;
    }
    return f;
  }

  get length(): number { return this.#length; }
  get complete(): boolean { return this.#length === this.expect.size; }

  /** Keeps only the first `length` bytes (a partial chunk written before a crash). */
  async truncate(length: number): Promise<void> {
    if (length >= this.#length) return;
    const bytes = (await this.storage.read(this.file)) ?? new Uint8Array(0);
    await this.storage.writeAtomic(this.file, bytes.subarray(0, length));
    this.#length = length;
  }

  async append(data: Uint8Array): Promise<void> {
    if (this.#length + data.byteLength > this.expect.size) throw new DeployError('transfer', `more than the announced ${this.expect.size} bytes arrived`);
    await this.storage.append(this.file, data);
    await this.storage.sync(this.file);
    this.#length += data.byteLength;
  }

  /** The whole bundle, checked against the announced sha256. */
  async bytes(): Promise<Uint8Array> {
    const bytes = (await this.storage.read(this.file)) ?? new Uint8Array(0);
    if (bytes.byteLength !== this.expect.size) throw new DeployError('transfer', `truncated transfer: ${bytes.byteLength} of ${this.expect.size} bytes arrived`);
    const hash = sha256Hex(bytes);
    if (hash !== this.expect.sha256) throw new DeployError('hash-mismatch', `the received bundle has sha256 ${hash.slice(0, 16)}…, the deploy command says ${this.expect.sha256.slice(0, 16)}…`);
    return bytes;
  }

  remove(): Promise<void> {
    return this.storage.remove(this.file);
  }
}
