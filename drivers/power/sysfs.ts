/**
 * Reading sysfs attributes: one value per file, text with a trailing newline. Every failure becomes
 * a SysfsError that names the file and says what was wrong with it, so a sensor can report itself
 * unavailable with a message a person can act on.
 *
 * The tree may not be sysfs at all (power.root points anywhere), so reads are bounded: opened with
 * O_NONBLOCK (a FIFO cannot block the open), refused unless a regular file, and read up to
 * MAX_ATTRIBUTE_BYTES — sysfs attributes are at most one page, and stat sizes in sysfs say 4096
 * whatever the content, so the size is learnt by reading, never from stat.
 */
import { constants, type Stats } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export class SysfsError extends Error {
  override readonly name = 'SysfsError';
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'missing',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EIO: 'I/O error from the driver',
  ENODEV: 'device gone',
  ENXIO: 'device gone',
  EAGAIN: 'driver busy, try again',
};

/** A sysfs attribute is at most one page. */
export const MAX_ATTRIBUTE_BYTES = 4096;

/** The attribute's text without the trailing newline; undefined when it does not exist or has no data. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return (await readBounded(path)).replace(/\n$/, '');
  } catch (e) {
    if (e instanceof SysfsError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    // ENODATA: hwmon's way of saying "this channel is disabled" (ina3221).
    if (code === 'ENOENT' || code === 'ENODATA') return undefined;
    throw new SysfsError(path, REASONS[code] ?? `cannot read (${code || (e as Error).message})`);
  }
}

async function readBounded(path: string): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await file.stat();
    if (!st.isFile()) throw new SysfsError(path, `not a regular file (${fileType(st)}): not a sysfs attribute`);
    // One byte more than allowed tells an oversized file from one that fills the page exactly.
    const buf = Buffer.alloc(MAX_ATTRIBUTE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_ATTRIBUTE_BYTES) throw new SysfsError(path, `larger than ${MAX_ATTRIBUTE_BYTES} bytes: not a sysfs attribute`);
    }
    return buf.toString('utf8', 0, length);
  } finally {
    await file.close();
  }
}

function fileType(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

export async function readRequired(path: string): Promise<string> {
  const text = await readOptional(path);
  if (text === undefined) throw new SysfsError(path, 'missing');
  return text;
}

/** A decimal integer attribute (µW, µV, mA, µJ ...), refusing anything else with what it found. */
export function parseInteger(path: string, text: string, unit: string): number {
  const t = text.trim();
  const n = /^-?\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n)) throw new SysfsError(path, `expected an integer in ${unit}, got ${quote(t)}`);
  return n;
}

export async function readInteger(path: string, unit: string): Promise<number | undefined> {
  const text = await readOptional(path);
  return text === undefined ? undefined : parseInteger(path, text, unit);
}

/** An integer attribute in its sysfs unit (mV, µW …) to the base unit; undefined stays undefined. */
export function scaled(value: number | undefined, perUnit: number): number | undefined {
  return value === undefined ? undefined : value / perUnit;
}

export async function readRequiredInteger(path: string, unit: string): Promise<number> {
  return parseInteger(path, await readRequired(path), unit);
}

/** Directory entries (following symlinks, as /sys/class/* entries are), sorted; [] when missing. */
export async function listDirs(dir: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names.filter((n) => pattern.test(n)).sort(naturalOrder)) {
    // stat, not the dirent type: class entries are symlinks into /sys/devices.
    if (await stat(join(dir, name)).then((s) => s.isDirectory(), () => false)) out.push(name);
  }
  return out;
}

/** hwmon2 before hwmon10. */
export function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function quote(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return text === '' ? 'an empty file' : JSON.stringify(shown);
}
