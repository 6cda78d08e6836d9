/** The Storage and StorageTree ports (runtime/ports.ts) on directories of the file system. */
import { mkdirSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Storage, StorageTree } from '../../runtime/ports.js';
import { FILE_LIMITS, FileError, readFileLimited } from './read-file.js';

const NAME = /^[A-Za-z0-9_.-]+$/;

export class FsStorage implements Storage {
  /** Open append handles, so appends do not reopen the file each time. */
  readonly #appending = new Map<string, Promise<FileHandle>>();

  /**
   * `mode` applies to files it creates (0o600 for key and replay state); `maxReadBytes` caps every
   * read (checked from the file's size before reading; FIFOs and directories are refused).
   * `appends: 'sync'` writes appends on the calling thread (into the page cache; sync() still
   * fsyncs off it): 5–7× less CPU per small append than a thread-pool round trip, which a thread
   * hosting hundreds of devices' outboxes needs; a lone daemon keeps 'async', so a stalled disk
   * never blocks its event loop.
   */
  constructor(readonly dir: string, private readonly mode = 0o644, private readonly maxReadBytes: number = FILE_LIMITS.binary, private readonly appends: 'async' | 'sync' = 'async') {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new FileError(err.code === 'ENOTDIR' || err.code === 'EEXIST' ? `cannot create state directory ${dir}: a file is in the way` : `cannot create state directory ${dir}: ${err.message}`);
    }
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir, { withFileTypes: true })).filter((e) => !e.isDirectory() && NAME.test(e.name) && !e.name.endsWith('.tmp')).map((e) => e.name).sort();
  }

  async read(name: string, maxBytes = this.maxReadBytes): Promise<Uint8Array | undefined> {
    try {
      return await readFileLimited(this.#path(name), Math.min(maxBytes, this.maxReadBytes), 'state file');
    } catch (e) {
      if (e instanceof FileError && e.missing) return undefined;
      throw e;
    }
  }

  async writeAtomic(name: string, data: Uint8Array): Promise<void> {
    const path = this.#path(name);
    // A temporary of its own: two writers of one file (processes or threads sharing a key directory) must
    // not rename each other's temporary away; the last rename wins whole.
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const h = await open(tmp, 'w', this.mode);
    try {
      try {
        await h.writeFile(data);
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await this.#syncDir();
  }

  async append(name: string, data: Uint8Array): Promise<void> {
    const h = await this.#handle(name);
    let off = 0;
    if (this.appends === 'sync') while (off < data.byteLength) off += writeSync(h.fd, data, off, data.byteLength - off);
    else while (off < data.byteLength) off += (await h.write(data, off, data.byteLength - off)).bytesWritten;
  }

  async sync(name: string): Promise<void> {
    const h = this.#appending.get(name);
    if (h) await (await h).sync();
  }

  async remove(name: string): Promise<void> {
    const h = this.#appending.get(name);
    if (h) {
      this.#appending.delete(name);
      await (await h).close();
    }
    await rm(this.#path(name), { force: true });
  }

  /** Closes the open append handles. */
  async close(): Promise<void> {
    const handles = [...this.#appending.values()];
    this.#appending.clear();
    await Promise.all(handles.map(async (h) => (await h).close()));
  }

  #handle(name: string): Promise<FileHandle> {
    let h = this.#appending.get(name);
    if (!h) {
      h = open(this.#path(name), 'a', this.mode);
      this.#appending.set(name, h);
      h.catch(() => this.#appending.delete(name));
    }
    return h;
  }

  async #syncDir(): Promise<void> {
    await syncDir(this.dir);
  }

  #path(name: string): string {
    return join(this.dir, checkName(name));
  }
}

function checkName(name: string): string {
  if (!NAME.test(name)) throw new Error(`invalid storage file name "${name}"`);
  return name;
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Sub-directories of one directory, each a FsStorage. */
export class FsStorageTree implements StorageTree {
  constructor(readonly dir: string, private readonly mode = 0o644) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir, { withFileTypes: true })).filter((e) => e.isDirectory() && NAME.test(e.name)).map((e) => e.name).sort();
  }

  open(name: string): FsStorage {
    return new FsStorage(join(this.dir, checkName(name)), this.mode);
  }

  tree(name: string): FsStorageTree {
    return new FsStorageTree(join(this.dir, checkName(name)), this.mode);
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.dir, checkName(name)), { recursive: true, force: true });
    await syncDir(this.dir);
  }
}
