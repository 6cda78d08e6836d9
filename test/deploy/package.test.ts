/**
 * The runtime as a device gets it: `npm run build` → `npm pack` → `npm install <tarball>` into a
 * scratch directory (dependencies from the npm registry, or its local cache) → `edgerun serve
 * --count 10` from there against a real Mosquitto, checked by a real MQTT subscriber; then
 * `edgerun dashboard` from there, its page and scripts fetched.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { repoRoot } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'edgerun-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeMosquitto('the packed runtime', () => {
  it('installs from its tarball, serves 10 results and the dashboard from there', { timeout: 900_000 }, async () => {
    await run('npm', ['run', 'build'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    await run('npm', ['pack', '--pack-destination', dir], { cwd: repoRoot, maxBuffer: 16 << 20 });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const scratch = join(dir, 'device');
    await run('mkdir', ['-p', scratch]);
    writeFileSync(join(scratch, 'package.json'), '{"name":"scratch","private":true}\n');
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], { cwd: scratch, maxBuffer: 16 << 20 });
    // Only the compiled runtime ships: no TypeScript sources in the installed package.
    const installed = join(scratch, 'node_modules', 'edgerun');
    expect(readdirSync(installed).sort()).toEqual(expect.arrayContaining(['bin', 'dist', 'models', 'package.json', 'packaging']));
    expect(readdirSync(installed)).not.toContain('apps');

    const broker = await Mosquitto.start({ persistence: false });
    const watch = await mqtt.connectAsync(broker.url, { clientId: 'pack-watch', reconnectPeriod: 0 });
    const ns = new Set<number>();
    watch.on('message', (_t, payload) => { ns.add((decodeMessage<{ n: number }>(payload).message.body).n); });
    await watch.subscribeAsync('edgerun/pack/+/results', { qos: 1 });
    try {
      const { stdout } = await run(join(scratch, 'node_modules', '.bin', 'edgerun'), ['serve', '--url', broker.url, '--count', '10', '--rate', '0', '--state-dir', join(scratch, 'state')], {
        cwd: scratch, env: { ...process.env, EDGERUN_DEVICE__FLEET: 'pack', EDGERUN_POWER__SENSOR: 'none' }, maxBuffer: 16 << 20,
      });
      expect(stdout).toContain('10 results produced and acknowledged');
      await new Promise((r) => setTimeout(r, 500));
      expect([...ns].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      await watch.endAsync(true);
      await broker.dispose();
    }

    // The dashboard ships too: the installed package serves the page, its runtime bundle (built by
    // esbuild from dist/ at start) and the browser builds of mqtt.js and uPlot from its dependencies.
    const dashboard = spawn(join(scratch, 'node_modules', '.bin', 'edgerun'), ['dashboard', '--port', '0', '--broker-ws', 'ws://127.0.0.1:9'], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dashboard.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    dashboard.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    try {
      const url = await until('the dashboard URL', () => /edgerun dashboard: (http:\/\/\S+)/.exec(out)?.[1], 60_000, () => out);
      for (const [path, has] of [['/', '<script type="module" src="/app.js">'], ['/app.js', "from '/edgerun.js'"], ['/edgerun.js', 'readBody'], ['/vendor/mqtt.js', 'MqttClient'], ['/vendor/uplot.js', 'uPlot']]) {
        const r = await fetch(new URL(path!, url));
        expect([path, r.status]).toEqual([path, 200]);
        expect(await r.text()).toContain(has);
      }
    } finally {
      dashboard.kill('SIGTERM');
    }
  });
});
