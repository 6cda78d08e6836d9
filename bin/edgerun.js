#!/usr/bin/env node
// The edgerun CLI. In a checkout: the TypeScript sources, compiled on the fly by tsx (cached on
// disk). In the packed tarball (npm pack ships dist/, not the sources): the ahead-of-time build.
import { existsSync } from 'node:fs';

const sources = new URL('../apps/edgerun/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/apps/edgerun/main.js', import.meta.url).href);
}
