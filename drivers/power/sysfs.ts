/**
 * Reading sysfs attributes: one value per file, text with a trailing newline. Every failure becomes
 * a SysfsError that names the file and says what was wrong with it, so a sensor can report itself
 * unavailable with a message a person can act on.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
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
  EISDIR: 'is a directory, not an attribute',
  EIO: 'I/O error from the driver',
  ENODEV: 'device gone',
  ENXIO: 'device gone',
  EAGAIN: 'driver busy, try again',
};

/** The attribute's text without the trailing newline; undefined when it does not exist or has no data. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).replace(/\n$/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    // ENODATA: hwmon's way of saying "this channel is disabled" (ina3221).
    if (code === 'ENOENT' || code === 'ENODATA') return undefined;
    throw new SysfsError(path, REASONS[code] ?? `cannot read (${code || (e as Error).message})`);
  }
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
