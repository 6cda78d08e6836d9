/** `npm run bench`: every benchmark, each printing ratios measured side by side in this one run. */
import os from 'node:os';
import { main as overhead } from './overhead.js';
import { main as coldStart } from './cold-start.js';

console.log(`edgerun bench — ${new Date().toISOString()} — ${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
await overhead();
await coldStart();
