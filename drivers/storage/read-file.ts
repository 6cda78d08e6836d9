/**
 * The one way edgerun reads a file from outside: models, inputs, data sets, config, profiles, key
 * and trust files, TLS files, outbox segments and state. Every read is capped, and the cap is
 * checked from the open file's size before a byte is read, so a huge file costs no memory. Only
 * regular files are read: the file is opened non-blocking and checked with fstat, so a FIFO,
 * a directory or a device (/dev/zero) is refused at once instead of hanging or never ending.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const MiB = 2 ** 20;

/** Caps by kind of file, bytes. A model's cap is config model.maxSizeMiB (≤ MAX_MODEL_MIB, runtime/model/load.ts). */
export const FILE_LIMITS = {
  /** Config files, device profiles, key files, trust stores and other small JSON state. */
  small: 1 * MiB,
  /** JSON inputs: parsed as one string, which V8 caps near 512 MiB. */
  json: 256 * MiB,
  /** TensorProto .pb inputs, EDGD data sets, outbox segments. */
  binary: 1024 * MiB,
} as const;

/** A file refused or unreadable; the message names the file and says why, in one line. */
export class FileError extends Error {
  override readonly name = 'FileError';
  /** The file does not exist (callers that treat absence as "empty" check this). */
  constructor(message: string, readonly missing = false) {
    super(message);
  }
}

/** fs.read takes an int32 length: read in chunks well below it. */
const CHUNK = 64 * MiB;
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

export async function readFileLimited(path: string, maxBytes: number, what = 'file'): Promise<Uint8Array> {
  const handle = await open(path, FLAGS).catch((e: NodeJS.ErrnoException) => { throw openError(e, path, what); });
  try {
    const size = checked(await handle.stat(), path, maxBytes, what);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await readChunk(handle, buf, off, path, what);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await handle.close();
  }
}

/** readFileLimited for the few synchronous readers (profiles, TLS files at client construction). */
export function readFileLimitedSync(path: string, maxBytes: number, what = 'file'): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (e) {
    throw openError(e as NodeJS.ErrnoException, path, what);
  }
  try {
    const size = checked(fstatSync(fd), path, maxBytes, what);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      let n: number;
      try {
        n = readSync(fd, buf, off, Math.min(CHUNK, size - off), off);
      } catch (e) {
        throw new FileError(`cannot read ${what} ${path}: ${(e as Error).message}`);
      }
      if (n === 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** The file as UTF-8 text (JSON, PEM), capped. */
export async function readTextLimited(path: string, maxBytes: number, what = 'file'): Promise<string> {
  return new TextDecoder().decode(await readFileLimited(path, maxBytes, what));
}

export function readTextLimitedSync(path: string, maxBytes: number, what = 'file'): string {
  return new TextDecoder().decode(readFileLimitedSync(path, maxBytes, what));
}

function readChunk(handle: FileHandle, buf: Uint8Array, off: number, path: string, what: string): Promise<{ bytesRead: number }> {
  return handle.read(buf, off, Math.min(CHUNK, buf.length - off), off)
    .catch((e: Error) => { throw new FileError(`cannot read ${what} ${path}: ${e.message}`); });
}

function checked(st: Stats, path: string, maxBytes: number, what: string): number {
  if (st.isDirectory()) throw new FileError(`${what} ${path} is a directory, not a file`);
  if (!st.isFile()) throw new FileError(`${what} ${path} is not a regular file (${kindOf(st)})`);
  if (st.size > maxBytes) throw new FileError(`${what} ${path} is ${st.size} bytes, more than the limit of ${maxBytes} bytes (${mib(maxBytes)})`);
  return st.size;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

const mib = (bytes: number): string => `${+(bytes / MiB).toFixed(2)} MiB`;

function openError(e: NodeJS.ErrnoException, path: string, what: string): FileError {
  if (e.code === 'ENOENT') return new FileError(`${what} not found: ${path}`, true);
  if (e.code === 'EACCES') return new FileError(`${what} ${path}: permission denied`);
  return new FileError(`cannot open ${what} ${path}: ${e.message}`);
}
