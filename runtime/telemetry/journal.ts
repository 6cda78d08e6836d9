/**
 * Journal framing for the outbox: records in segment files, each
 *
 *   magic 0xE5 0x4A | length u32 BE | crc32 u32 BE | body (length bytes)
 *
 * with the CRC-32 (IEEE, as zlib) over the length field and the body, so a garbled length is caught
 * too. Bodies:
 *   DATA  0x01 | seq f64 | createdAt f64 (wall ms) | kind length u8 | kind (utf8) | payload
 *   ACK   0x02 | count u32 | seq f64 × count      (delivered: PUBACK)
 *   DROP  0x03 | count u32 | seq f64 × count      (left without delivery: overflow, expiry, refusal)
 *
 * A torn write (crash mid-append) or a garbled region is skipped by scanning forward for the next
 * magic whose length and CRC check out; the records around it are kept.
 */
import { transientBytes } from '../transient-bytes.js';

const MAGIC0 = 0xe5;
const MAGIC1 = 0x4a;
export const HEADER_BYTES = 10;
/** Larger lengths are garbage, not records (and keep a resync scan cheap). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** CRC work a resync may do, in passes over the segment. */
const RESYNC_PASSES = 4;

export const enum RecordType { Data = 1, Ack = 2, Drop = 3 }

export interface DataRecord {
  type: RecordType.Data;
  seq: number;
  createdAt: number;
  kind: string;
  payload: Uint8Array;
}
export interface SeqListRecord {
  type: RecordType.Ack | RecordType.Drop;
  seqs: number[];
}
export type JournalRecord = DataRecord | SeqListRecord;

// Table-driven CRC-32 (reflected 0xEDB88320), slicing by 4: runtime/ stays free of node:zlib.
const CRC_TABLES = (() => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) t[k * 256 + n] = t[(k - 1) * 256 + n]! >>> 8 ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  }
  return t;
})();

export function crc32(data: Uint8Array, start = 0, end = data.length, seed = 0): number {
  const t = CRC_TABLES;
  let c = ~seed;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Frames a body that was written at HEADER_BYTES into `out` (one allocation per record). */
function seal(out: Uint8Array): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  dv.setUint32(2, out.length - HEADER_BYTES);
  dv.setUint32(6, crc32(out, HEADER_BYTES, out.length, crc32(out, 2, 6)));
  return out;
}

const kindBytes = new Map<string, Uint8Array>();

export function encodeData(seq: number, createdAt: number, kind: string, payload: Uint8Array): Uint8Array {
  let k = kindBytes.get(kind);
  if (!k) kindBytes.set(kind, (k = utf8.encode(kind)));
  if (k.length > 255) throw new Error(`kind "${kind}" is too long for the journal`);
  const out = new Uint8Array(HEADER_BYTES + 18 + k.length + payload.length);
  const dv = new DataView(out.buffer);
  const b = HEADER_BYTES;
  out[b] = RecordType.Data;
  dv.setFloat64(b + 1, seq);
  dv.setFloat64(b + 9, createdAt);
  out[b + 17] = k.length;
  out.set(k, b + 18);
  out.set(payload, b + 18 + k.length);
  return seal(out);
}

/** An ACK or DROP record: written, then dropped (so from a shared slab, runtime/transient-bytes.ts). */
export function encodeSeqList(type: RecordType.Ack | RecordType.Drop, seqs: readonly number[]): Uint8Array {
  const out = transientBytes(HEADER_BYTES + 5 + 8 * seqs.length);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const b = HEADER_BYTES;
  out[b] = type;
  dv.setUint32(b + 1, seqs.length);
  for (let i = 0; i < seqs.length; i++) dv.setFloat64(b + 5 + 8 * i, seqs[i]!);
  return seal(out);
}

function decodeBody(b: Uint8Array): JournalRecord | undefined {
  if (b.length < 1) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (b[0]) {
    case RecordType.Data: {
      if (b.length < 18 || b.length < 18 + b[17]!) return undefined;
      const kl = b[17]!;
      const seq = dv.getFloat64(1);
      if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
      return { type: RecordType.Data, seq, createdAt: dv.getFloat64(9), kind: fromUtf8.decode(b.subarray(18, 18 + kl)), payload: b.slice(18 + kl) };
    }
    case RecordType.Ack:
    case RecordType.Drop: {
      if (b.length < 5) return undefined;
      const n = dv.getUint32(1);
      if (b.length !== 5 + 8 * n) return undefined;
      const seqs: number[] = new Array(n);
      for (let i = 0; i < n; i++) seqs[i] = dv.getFloat64(5 + 8 * i);
      return { type: b[0], seqs };
    }
    default:
      return undefined;
  }
}

export interface ParsedSegment {
  records: JournalRecord[];
  /** Regions that were not valid records (torn tail, garbage), and their total bytes. */
  corruptRegions: number;
  corruptBytes: number;
}

/**
 * The valid record at `off`, with its end offset, or undefined. With `budget`, the bytes its CRC
 * check costs are taken from it, and a candidate the budget cannot pay for is not checked.
 */
function recordAt(data: Uint8Array, dv: DataView, off: number, budget?: { left: number }): { rec: JournalRecord; end: number } | undefined {
  if (off + HEADER_BYTES > data.length || data[off] !== MAGIC0 || data[off + 1] !== MAGIC1) return undefined;
  const len = dv.getUint32(off + 2);
  if (len > MAX_RECORD_BYTES || off + HEADER_BYTES + len > data.length) return undefined;
  if (budget && (budget.left -= len) < 0) return undefined;
  const crc = crc32(data, off + HEADER_BYTES, off + HEADER_BYTES + len, crc32(data, off + 2, off + 6));
  if (crc !== dv.getUint32(off + 6)) return undefined;
  const rec = decodeBody(data.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len));
  return rec ? { rec, end: off + HEADER_BYTES + len } : undefined;
}

/**
 * Every valid record of a segment, in order; corrupt regions are skipped and counted, never thrown.
 * Resync checks CRCs of candidate records inside garbage; crafted garbage (a magic and a plausible
 * length every few bytes) would make that quadratic, so it gets a budget of a few passes over the
 * segment: past it, the rest of the segment counts as corrupt.
 */
export function parseSegment(data: Uint8Array): ParsedSegment {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const records: JournalRecord[] = [];
  let corruptRegions = 0;
  let corruptBytes = 0;
  let off = 0;
  const resync = { left: RESYNC_PASSES * data.length };
  while (off < data.length && resync.left >= 0) {
    const r = recordAt(data, dv, off);
    if (r) {
      records.push(r.rec);
      off = r.end;
      continue;
    }
    // Resync: the next offset where a whole valid record starts.
    let next = off + 1;
    while (next < data.length && resync.left >= 0 && !(data[next] === MAGIC0 && recordAt(data, dv, next, resync))) next++;
    if (resync.left < 0) next = data.length;
    corruptRegions++;
    corruptBytes += next - off;
    off = next;
  }
  return { records, corruptRegions, corruptBytes };
}
