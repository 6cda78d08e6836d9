/**
 * The device's production progress, so a restarted process continues where it left off: which
 * result numbers the publisher has accepted (the watermark below which all are, plus the few above
 * it that parallel streams accepted out of order) and the next sample of every stream.
 *
 * Each acceptance is appended to a log file (`progress-<gen>.log`, one line `n stream next`) right
 * after the reporter journaled the result: a completed write survives a SIGKILL of the process (the
 * kernel has it), so a restarted device re-produces a result number only if it was killed in the
 * microseconds between the two writes. Every `compactEvery` acceptances (and at open and close) the
 * state is written atomically to `progress.json` and older logs are removed. A torn last line (power
 * loss mid-append) is ignored.
 */
import { STATE_FILE_MAX_BYTES, type Storage } from '../../../runtime/ports.js';
import { parseJson } from '../../../runtime/json.js';
import { transientUtf8 } from '../../../runtime/transient-bytes.js';

const SNAPSHOT = 'progress.json';
const LOG = /^progress-(\d{12})\.log$/;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

interface Snapshot { v: 2; results: number; accepted: number[]; streams: Record<string, number> }

export class Progress {
  #results = 0;
  readonly #accepted = new Set<number>();
  readonly #streams = new Map<string, number>();
  #gen = 0;
  #since = 0;
  /** Storage operations one at a time (an append must not race the removal of its file). */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly storage: Storage, private readonly compactEvery: number) {}

  static async open(storage: Storage, compactEvery = 1000): Promise<Progress> {
    const p = new Progress(storage, compactEvery);
    const snap = await storage.read(SNAPSHOT, STATE_FILE_MAX_BYTES);
    if (snap) {
      try {
        const s = parseJson(fromUtf8.decode(snap), SNAPSHOT) as Partial<Snapshot>;
        if (Number.isSafeInteger(s.results) && s.results! >= 0) p.#results = s.results!;
        for (const n of s.accepted ?? []) if (Number.isSafeInteger(n)) p.#accepted.add(n);
        for (const [k, v] of Object.entries(s.streams ?? {})) if (Number.isSafeInteger(v)) p.#streams.set(k, v);
      } catch { /* atomic replace never leaves a torn file; an edited one counts as no snapshot */ }
    }
    const logs = (await storage.list()).filter((f) => LOG.test(f));
    for (const f of logs) {
      p.#gen = Math.max(p.#gen, Number(LOG.exec(f)![1]));
      const text = fromUtf8.decode((await storage.read(f, STATE_FILE_MAX_BYTES)) ?? new Uint8Array());
      const lines = text.split('\n');
      lines.pop(); // after the last newline: '' or a torn append
      for (const line of lines) {
        const [n, stream, next] = line.split(' ');
        if (stream === undefined || next === undefined || !/^\d+$/.test(n!) || !/^\d+$/.test(next)) continue;
        p.#apply(Number(n), stream, Number(next));
      }
    }
    p.#advance();
    await p.#compact();
    return p;
  }

  /** Every result number below this was accepted. */
  get results(): number { return this.#results; }

  /** Where `stream` continues (0 for a new one). */
  nextSample(stream: string): number { return this.#streams.get(stream) ?? 0; }

  /** The lowest result number not accepted yet: where a restarted device continues. */
  get firstFree(): number { return this.#results; }

  isAccepted(n: number): boolean { return n < this.#results || this.#accepted.has(n); }

  /** Records that result `n` (from `stream`, whose next sample is `next`) was accepted by the publisher. */
  accepted(n: number, stream: string, next: number): Promise<void> {
    this.#apply(n, stream, next);
    this.#advance();
    // Written, then dropped: no ArrayBuffer of its own per result (runtime/transient-bytes.ts).
    const line = transientUtf8(`${n} ${stream} ${next}\n`);
    const gen = this.#gen;
    const done = this.#serial(() => this.storage.append(this.#log(gen), line));
    if (++this.#since >= this.compactEvery) void this.#serial(() => this.#compact()).catch(() => undefined);
    return done;
  }

  /** Snapshot, remove the logs, close the storage's handles. */
  async close(): Promise<void> {
    await this.#serial(() => this.#compact());
    await (this.storage as { close?: () => Promise<void> }).close?.();
  }

  #apply(n: number, stream: string, next: number): void {
    if (n >= this.#results) this.#accepted.add(n);
    if (next > (this.#streams.get(stream) ?? 0)) this.#streams.set(stream, next);
  }

  #advance(): void {
    while (this.#accepted.delete(this.#results)) this.#results++;
  }

  #log(gen: number): string {
    return `progress-${String(gen).padStart(12, '0')}.log`;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** New appends go to a new log; the snapshot covers everything before; older logs go. */
  async #compact(): Promise<void> {
    this.#since = 0;
    const old = this.#gen;
    this.#gen = old + 1;
    const snap: Snapshot = { v: 2, results: this.#results, accepted: [...this.#accepted].sort((a, b) => a - b), streams: Object.fromEntries(this.#streams) };
    await this.storage.writeAtomic(SNAPSHOT, utf8.encode(JSON.stringify(snap)));
    for (const f of await this.storage.list()) {
      const m = LOG.exec(f);
      if (m && Number(m[1]) <= old) await this.storage.remove(f);
    }
  }
}
