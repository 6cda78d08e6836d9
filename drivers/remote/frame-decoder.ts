/**
 * Cuts a byte stream into frames. Chunks are kept in a list and joined only when a frame is
 * complete, so a large payload arriving in many small chunks costs one copy, not one per chunk.
 * After a fatal error (bad header, oversized length) the stream cannot be re-synchronised: the
 * decoder refuses further input and the owner closes the connection.
 */
import { HEADER_BYTES, ProtocolError, decodeHeader, type Frame } from './protocol.js';

export class FrameDecoder {
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #header: { type: number; id: number; length: number } | undefined;
  #failed: ProtocolError | undefined;

  constructor(private readonly maxPayload: number) {}

  /** Adds bytes; returns the frames now complete. Throws a fatal ProtocolError on a bad header. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#failed) throw this.#failed;
    if (chunk.length) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (!this.#header) {
        if (this.#buffered < HEADER_BYTES) break;
        try {
          this.#header = decodeHeader(this.#take(HEADER_BYTES), this.maxPayload);
        } catch (e) {
          this.#failed = e as ProtocolError;
          throw e;
        }
      }
      const h = this.#header;
      if (this.#buffered < h.length) break;
      frames.push({ type: h.type, id: h.id, payload: this.#take(h.length) });
      this.#header = undefined;
    }
    return frames;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.#buffered + (this.#header ? HEADER_BYTES : 0);
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift(); else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.#chunks.shift(); else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
