#!/usr/bin/env node
// Runs a TypeScript file through tsx: `node bin/run-ts.js bench/index.ts [args]`.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bin/run-ts.js <file.ts> [args...]');
  process.exit(2);
}
// Make the script see itself as the entry point: argv[1] is its absolute path.
process.argv.splice(1, 2, resolve(file));
register();
await import(pathToFileURL(resolve(file)).href);
