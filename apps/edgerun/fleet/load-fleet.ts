/** Reads a fleet file (YAML or JSON, runtime/fleet/fleet-file.ts) into its devices; relative paths in it are relative to the file. */
import { dirname, resolve } from 'node:path';
import { Random } from '../../../drivers/crossbar/random.js';
import { FILE_LIMITS, readTextLimited } from '../../../drivers/storage/read-file.js';
import { expandFleet, parseFleetFile, type Fleet } from '../../../runtime/fleet/fleet-file.js';

export interface LoadedFleet extends Fleet {
  /** Where the file's relative model and profile paths start. */
  baseDir: string;
}

export async function loadFleetFile(path: string): Promise<LoadedFleet> {
  const text = await readTextLimited(path, FILE_LIMITS.small, 'fleet file');
  const fleet = expandFleet(parseFleetFile(text, path), (seed) => {
    const rng = new Random(seed);
    return () => rng.uniform();
  });
  return { ...fleet, baseDir: dirname(resolve(path)) };
}
