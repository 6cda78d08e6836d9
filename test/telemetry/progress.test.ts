/** Device progress on real files: restored after a "crash" (no close), out-of-order acceptances, compaction, a torn tail. */
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { Progress } from '../../apps/edgerun/device/progress.js';

describe('device progress', () => {
  const dirs: string[] = [];
  const dir = (): string => { const d = mkdtempSync(join(tmpdir(), 'edgerun-progress-')); dirs.push(d); return d; };
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('continues after a crash from what was appended, including numbers accepted out of order', async () => {
    const d = dir();
    const a = await Progress.open(new FsStorage(d), 1000);
    for (let n = 0; n < 10; n++) await a.accepted(n, 'cam', n + 1);
    await a.accepted(12, 'mic', 3); // a parallel stream got ahead
    // No close(): the process dies here.
    const b = await Progress.open(new FsStorage(d), 1000);
    expect(b.results).toBe(10);
    expect(b.firstFree).toBe(10);
    expect(b.isAccepted(12)).toBe(true);
    expect(b.isAccepted(11)).toBe(false);
    expect(b.nextSample('cam')).toBe(10);
    expect(b.nextSample('mic')).toBe(3);
    await b.accepted(10, 'cam', 11);
    await b.accepted(11, 'cam', 12);
    expect(b.results).toBe(13);
    await b.close();
    expect(readdirSync(d).filter((f) => f.endsWith('.log'))).toEqual([]);
    const c = await Progress.open(new FsStorage(d));
    expect(c.results).toBe(13);
    await c.close();
  });

  it('compacts every N acceptances without losing any, and ignores a torn last line', async () => {
    const d = dir();
    const a = await Progress.open(new FsStorage(d), 7);
    for (let n = 0; n < 50; n++) await a.accepted(n, 's', n + 1);
    expect(readdirSync(d).filter((f) => f.endsWith('.log')).length).toBeLessThanOrEqual(2);
    const logs = readdirSync(d).filter((f) => f.endsWith('.log')).sort();
    appendFileSync(join(d, logs.at(-1)!), '50 s 5'); // torn: no newline, next sample cut short
    const b = await Progress.open(new FsStorage(d));
    expect(b.results).toBe(50);
    expect(b.nextSample('s')).toBe(50);
    await b.close();
  });
});
