/**
 * Short-lived byte arrays carved out of shared 64 KiB slabs (as Node's Buffer pool does) instead
 * of an ArrayBuffer each. A fleet thread makes thousands of small byte arrays a second (messages,
 * journal writes); profiled at 1,000 devices, allocating them — TextEncoder.encode, new
 * Uint8Array — took ~0.2–0.5 ms a call in stretches where V8 was also collecting, and those
 * stretches stalled the thread for 0.2–1 s. A view keeps its whole slab alive: use these only for
 * bytes that are copied or written and then dropped, never for bytes that are kept.
 */
const SLAB_BYTES = 64 * 1024;
/** Larger arrays get their own buffer. */
const MAX_BYTES = SLAB_BYTES / 8;

const utf8 = new TextEncoder();
let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

function room(bytes: number): void {
  if (used + bytes > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
}

/** `n` zeroed bytes. */
export function transientBytes(n: number): Uint8Array {
  if (n > MAX_BYTES) return new Uint8Array(n);
  room(n);
  const out = slab.subarray(used, used + n);
  used += n;
  return out;
}

/** The UTF-8 bytes of `s`. */
export function transientUtf8(s: string): Uint8Array {
  // Worst case three bytes per UTF-16 unit.
  if (3 * s.length > MAX_BYTES) return utf8.encode(s);
  room(3 * s.length);
  const { written } = utf8.encodeInto(s, slab.subarray(used, used + 3 * s.length));
  const out = slab.subarray(used, used + written);
  used += written;
  return out;
}
