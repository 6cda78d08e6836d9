/**
 * The one capped file reader (drivers/storage/read-file.ts) and the Storage on top of it: the size
 * is checked before reading, only regular files are read, FIFOs never block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileError, readFileLimited, readFileLimitedSync, readTextLimited } from '../drivers/storage/read-file.js';
import { FsStorage } from '../drivers/storage/fs-storage.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-read-'));
  writeFileSync(join(dir, 'small'), 'hello');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'huge'), '');
  truncateSync(join(dir, 'huge'), 5 * 2 ** 30); // sparse: reading it would cost 5 GiB
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Both variants refuse alike. */
async function refusedBoth(path: string, max: number, message: RegExp): Promise<void> {
  await expect(readFileLimited(path, max, 'thing')).rejects.toThrow(message);
  await expect(readFileLimited(path, max, 'thing')).rejects.toBeInstanceOf(FileError);
  expect(() => readFileLimitedSync(path, max, 'thing')).toThrow(message);
}

describe('readFileLimited', () => {
  it('reads a regular file up to the limit', async () => {
    expect(await readTextLimited(join(dir, 'small'), 5)).toBe('hello');
    expect(new TextDecoder().decode(readFileLimitedSync(join(dir, 'small'), 5))).toBe('hello');
  });

  it('refuses a file above the limit from its size, naming the file and both sizes', async () => {
    await refusedBoth(join(dir, 'small'), 4, /^thing .*small is 5 bytes, more than the limit of 4 bytes/);
    const before = process.memoryUsage().rss;
    await refusedBoth(join(dir, 'huge'), 2 ** 30, /huge is 5368709120 bytes, more than the limit of 1073741824 bytes \(1024 MiB\)/);
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 28); // nothing of the 5 GiB was allocated
  });

  it('refuses FIFOs (without blocking on them), directories and devices', async () => {
    await refusedBoth(join(dir, 'fifo'), 100, /fifo is not a regular file \(a FIFO\)/);
    await refusedBoth(dir, 100, /is a directory, not a file/);
    await refusedBoth('/dev/zero', 100, /\/dev\/zero is not a regular file \(a character device\)/);
  });

  it('says when a file is missing (and flags it for callers that treat absence as empty)', async () => {
    const e = await readFileLimited(join(dir, 'nope'), 10, 'key file').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FileError);
    expect((e as FileError).message).toBe(`key file not found: ${join(dir, 'nope')}`);
    expect((e as FileError).missing).toBe(true);
  });
});

describe('FsStorage reads through the capped reader', () => {
  it('absent → undefined; FIFO, directory or oversized state file → FileError', async () => {
    const s = new FsStorage(join(dir, 'state'), 0o600, 16);
    expect(await s.read('absent')).toBeUndefined();
    await s.writeAtomic('ok', new TextEncoder().encode('fits'));
    expect(new TextDecoder().decode(await s.read('ok'))).toBe('fits');
    await s.writeAtomic('big', new Uint8Array(17));
    await expect(s.read('big')).rejects.toThrow(/state file .*big is 17 bytes, more than the limit of 16 bytes/);
    mkdirSync(join(dir, 'state', 'adir'));
    await expect(s.read('adir')).rejects.toThrow(/adir is a directory, not a file/);
    execFileSync('mkfifo', [join(dir, 'state', 'apipe')]);
    await expect(s.read('apipe')).rejects.toThrow(/apipe is not a regular file \(a FIFO\)/);
  });

  it('a state directory path blocked by a file is a clear error', () => {
    expect(() => new FsStorage(join(dir, 'small', 'outbox'))).toThrow(/cannot create state directory .*small\/outbox: a file is in the way/);
  });
});
