/** The fake sysfs trees of test/power/fixtures (one per board), read in place or as writable copies. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const temps: string[] = [];

/** A board's sysfs root, read in place. */
export const sys = (board: string): string => join(FIXTURES, board, 'sys');

/** A writable copy of a fixture tree (symlinks kept as they are in sysfs); removed by removeCopies(). */
export async function copyOf(board: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgerun-sysfs-'));
  temps.push(dir);
  await cp(join(FIXTURES, board), dir, { recursive: true, verbatimSymlinks: true });
  return join(dir, 'sys');
}

/** For afterEach: removes every copy made so far. */
export async function removeCopies(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}
