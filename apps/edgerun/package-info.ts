/** Where the edgerun package lives and its version, from the sources or from the compiled dist/. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function findPackage(): { root: string; version: string } {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    const file = new URL('package.json', dir);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'edgerun') return { root: fileURLToPath(dir), version: pkg.version ?? '0.0.0' };
  }
  throw new Error('cannot find the edgerun package.json above ' + fileURLToPath(import.meta.url));
}

export const { root: packageRoot, version } = findPackage();
