import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mosquitto, describeMosquitto } from '../helpers/mosquitto.js';
import { repoRoot, startEdgerun, type EdgerunProcess } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import type { FleetReport } from '../../runtime/fleet/report.js';

describeMosquitto('edgerun fleet collect against a real device over Mosquitto', () => {
  let broker: Mosquitto;
  let dir: string;
  const procs: ChildProcess[] = [];
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); dir = mkdtempSync(join(tmpdir(), 'edgerun-collect-')); });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], env: Record<string, string> = {}): EdgerunProcess => {
    const p = startEdgerun(args, env, 1 << 20);
    procs.push(p.proc);
    return p;
  };

  it('collects a device\'s results, energy and battery from its messages; nothing lost', async () => {
    const out = join(dir, 'metrics.json');
    const collect = run(['fleet', 'collect', '--url', broker.url, '--fleet', 'lab', '--results', '30', '--seconds', '90', '--out', out, '--html', join(dir, 'metrics.html')]);
    await until('collector subscribed', () => (collect.log().includes('collecting on') ? true : undefined), 30_000, collect.log);
    const device = run(['serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '20', '--count', '30', '--state-dir', join(dir, 'state'), '--quiet'], {
      EDGERUN_DEVICE__ID: 'dev-1', EDGERUN_DEVICE__FLEET: 'lab', EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '300', EDGERUN_PLACEMENT__DEFAULT: 'digital',
      EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'), EDGERUN_POWER__ROOT: join(repoRoot, 'test/power/fixtures/laptop/sys'),
    });
    expect((await collect.exit).code, collect.log()).toBe(0);
    await device.exit;
    const report = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const m = report.metrics!;
    expect(Object.keys(m.devices)).toEqual(['dev-1']);
    const d = m.devices['dev-1']!;
    expect(d.results).toBeGreaterThanOrEqual(30);
    expect(d.lost).toBe(0);
    expect(d.duplicated).toBe(0);
    expect(d.latency.count).toBe(d.results);
    expect(d.accuracy).toBeGreaterThan(0.6);
    expect(d.energyPerInferenceJ).toBeGreaterThan(0);
    expect(d.batteryPercent).toBeGreaterThan(0);
    expect(m.loadGeneratorCpuShare).toBeGreaterThan(0);
    expect(collect.log()).toMatch(/1 device\(s\), \d+ results, end-to-end p50 [\d.]+ ms p99 [\d.]+ ms, lost 0, duplicated 0/);
    expect(await readFile(join(dir, 'metrics.html'), 'utf8')).toMatch(/<table class="devices">/);
  }, 120_000);
});
