/**
 * Cold start: wall time from spawning a process to its first inference result on stdout, for
 * the edgerun CLI (through tsx, and compiled with `npm run build` when dist/ exists) beside a bare
 * Node script that only creates an onnxruntime-web session and runs it. Then the resident memory
 * after 1,000 inferences.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmt, median, report } from './measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const model = 'models/mlp.onnx';

function firstOutputMs(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let done = false;
    child.stdout.once('data', () => { done = true; resolve(performance.now() - t0); });
    child.on('exit', (code) => { if (!done) reject(new Error(`${args.join(' ')} exited ${code} before printing`)); });
  });
}

async function coldStart(label: string, args: string[], runs = 7): Promise<number> {
  await firstOutputMs(args); // fills the OS page cache and tsx's transform cache: we measure warm disks, cold processes
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await firstOutputMs(args));
  const ms = median(times);
  report(`${label}: process start → first result ms`, fmt(ms, 0), { text: '< 500 ms', met: ms < 500 });
  return ms;
}

function rssAfter(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!).rssMB as number) : reject(new Error(`rss child exited ${code}`))));
  });
}

export async function main(): Promise<void> {
  console.log('\n# cold start (median of 7) and memory');
  const bare = await coldStart('bare onnxruntime-web script', ['bench/bare-first-inference.mjs', model]);
  const tsx = await coldStart('edgerun run (tsx)', ['bin/edgerun.js', 'run', model, '--random', '--json']);
  report('edgerun (tsx) / bare', `${fmt(tsx / bare)}×`);
  if (existsSync(`${root}/dist/apps/edgerun/main.js`)) {
    const built = await coldStart('edgerun run (compiled dist/)', ['dist/apps/edgerun/main.js', 'run', model, '--random', '--json']);
    report('edgerun (compiled) / bare', `${fmt(built / bare)}×`);
  } else {
    console.log('(run `npm run build` first to also measure the compiled CLI)');
  }
  const cli = existsSync(`${root}/dist/apps/edgerun/main.js`) ? 'dist/apps/edgerun/main.js' : 'bin/edgerun.js';
  for (const name of ['mlp', 'cnn']) {
    const bareRss = await rssAfter(['bench/bare-first-inference.mjs', `models/${name}.onnx`, '1000']);
    const rss = await rssAfter([cli, 'run', `models/${name}.onnx`, '--random', '--repeat', '1000', '--json']);
    report(`${name}: bare onnxruntime-web RSS after 1,000 inferences (MB)`, fmt(bareRss, 1));
    report(`${name}: edgerun RSS after 1,000 inferences (MB, ${cli.startsWith('dist') ? 'compiled' : 'tsx'})`, fmt(rss, 1), { text: '< 120 MB', met: rss < 120 });
    report(`${name}: edgerun / bare RSS`, `${fmt(rss / bareRss)}×`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
