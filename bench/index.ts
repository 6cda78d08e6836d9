/**
 * `npm run bench`: every benchmark, each printing ratios measured side by side in this one run.
 * `npm run bench -- analog energy` runs only the named ones.
 */
import os from 'node:os';

const benches: Record<string, () => Promise<{ main: () => Promise<void> }>> = {
  overhead: () => import('./overhead.js'),
  'cold-start': () => import('./cold-start.js'),
  crossbar: () => import('./crossbar.js'),
  analog: () => import('./analog.js'),
  energy: () => import('./energy.js'),
  governor: () => import('./governor.js'),
  scheduler: () => import('./scheduler.js'),
  remote: () => import('./remote.js'),
  mqtt: () => import('./mqtt.js'),
  zoo: () => import('./zoo.js'),
  deploy: () => import('./deploy.js'),
  detect: () => import('./detect.js'),
  'fleet-scale': () => import('./fleet-scale.js'),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !(n in benches));
if (unknown.length) {
  console.error(`unknown bench ${unknown.join(', ')}; choose from ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
console.log(`edgerun bench — ${new Date().toISOString()} — ${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`);
for (const [name, load] of Object.entries(benches)) {
  if (wanted.length && !wanted.includes(name)) continue;
  await (await load()).main();
}
