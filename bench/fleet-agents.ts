/**
 * The multi-agent goal (issue 16): two agents against one broker should carry ≥ 1.8× the devices
 * of one, on machines with the cores for it. Here both run side by side in one run on this
 * machine: the same fleet (N devices, MLP on `pcm`, `--rate` inferences/s each) through
 * `edgerun fleet bench` with one agent (all the cores' worker threads) and then with two agents
 * (half the threads each), against one local Mosquitto, measured by the bench's shared-subscription
 * consumers. Printed: results/s, end-to-end p50/p99, lost, and the two-agent / one-agent ratios.
 * On one machine the agents share its cores, so the ratio says what splitting costs or gains there,
 * not what a second machine adds.
 *
 *   node bin/run-ts.js bench/fleet-agents.ts --devices 60 --seconds 30
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Mosquitto } from '../test/helpers/mosquitto.js';
import type { FleetReport } from '../runtime/fleet/report.js';
import { fmt, report } from './measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { devices: { type: 'string', default: '60' }, seconds: { type: 'string', default: '30' }, rate: { type: 'string', default: '1' } } });
const devices = Number(values.devices), seconds = Number(values.seconds), rate = Number(values.rate);
if (!(Number.isInteger(devices) && devices >= 2) || !(seconds > 0) || !(rate > 0)) {
  console.error('usage: fleet-agents.ts [--devices N ≥ 2] [--seconds S] [--rate HZ]');
  process.exit(2);
}

function cli(args: string[]): { proc: ChildProcess; exit: Promise<number | null>; log: () => string } {
  const proc = spawn(process.execPath, ['bin/edgerun.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (b: Buffer) => { log += b.toString(); });
  proc.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
  return { proc, exit: new Promise((resolve) => proc.once('exit', (code) => resolve(code))), log: () => log };
}

const dir = mkdtempSync(join(tmpdir(), 'edgerun-fleet-agents-'));
const broker = await Mosquitto.start({ persistence: false });
try {
  writeFileSync(join(dir, 'fleet.yaml'), `fleet: agents\ngroups:\n  - { name: d, count: ${devices}, profile: pcm, models: [mlp], rateHz: ${rate} }\n`);
  const cores = availableParallelism();
  const runs: { agents: number; r: FleetReport }[] = [];
  for (const agents of [1, 2]) {
    const workers = Math.max(1, Math.floor(cores / agents));
    const procs = Array.from({ length: agents }, (_, i) => cli(['fleet', 'agent', '--url', broker.url, '--fleet', 'agents', '--id', `x${agents}-${i}`, '--workers', String(workers), '--state-dir', join(dir, `x${agents}-${i}`)]));
    const out = join(dir, `bench-${agents}.json`);
    const b = cli(['fleet', 'bench', '--devices', join(dir, 'fleet.yaml'), '--agents', String(agents), '--url', broker.url, '--duration', String(seconds), '--consumers', '2', '--wait-agents', '120', '--no-progress', '--out', out]);
    const code = await b.exit;
    for (const p of procs) p.proc.kill('SIGINT');
    await Promise.all(procs.map((p) => p.exit));
    if (code !== 0) throw new Error(`fleet bench with ${agents} agent(s) exited ${code}:\n${b.log()}`);
    runs.push({ agents, r: JSON.parse(readFileSync(out, 'utf8')) as FleetReport });
  }
  console.log(`fleet agents: ${devices} devices × ${rate} Hz MLP on pcm, ${seconds} s each, one Mosquitto; ${cpus()[0]?.model ?? 'cpu'} × ${cores}, load average ${loadavg()[0]!.toFixed(1)}`);
  for (const { agents, r } of runs) {
    const f = r.metrics!.fleet;
    console.log(`  ${agents} agent(s) × ${Math.max(1, Math.floor(cores / agents))} worker thread(s)`);
    report('    results, results/s', `${f.results}, ${fmt(f.resultsPerSecond, 1)}`, { text: `≈ ${fmt(devices * rate, 0)}/s`, met: f.resultsPerSecond >= devices * rate * 0.95 });
    report('    end-to-end p50 / p99, ms', `${fmt(f.latency.p50Ms, 1)} / ${fmt(f.latency.p99Ms, 1)}`, { text: 'p99 < 100', met: f.latency.p99Ms < 100 });
    report('    lost / duplicated', `${f.lost} / ${f.duplicated}`, { text: '0 lost', met: f.lost === 0 });
    report('    agents done', `${r.agents!.filter((a) => a.state === 'done').length} of ${agents}`);
  }
  const [one, two] = runs.map((x) => x.r.metrics!.fleet);
  report(`two agents / one agent on the same ${cores} core(s): results/s`, `×${fmt(two!.resultsPerSecond / one!.resultsPerSecond)}`);
  report('two agents / one agent: p99', `×${fmt(two!.latency.p99Ms / one!.latency.p99Ms)}`);
} finally {
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
}
