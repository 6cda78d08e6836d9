/**
 * LoadGen scenarios through the real CLI: a fleet whose model's input is not called "input"
 * (someone else's model) runs a scenario to the end; Ctrl-C (a real SIGINT to the real process)
 * in the middle of `fleet devices --scenario` and of `fleet run` ends each with the report of what
 * was measured so far, marked interrupted, and exit code 130.
 */
import { expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { FleetReport } from '../../runtime/fleet/report.js';
import { buildModel } from '../helpers/onnx-builder.js';
import { describeMosquitto } from '../helpers/mosquitto.js';
import { brokerStage } from '../helpers/broker-stage.js';
import { until } from '../helpers/until.js';

describeMosquitto('fleet scenarios: a foreign model, and Ctrl-C mid-run', () => {
  const stage = brokerStage('edgerun-interrupt-');

  it('a model whose input is named pixel_values: SingleStream over 2 devices completes every query, each with one result', async () => {
    writeFileSync(join(stage.dir, 'pixels.onnx'), buildModel({
      nodes: [{ op: 'Flatten', inputs: ['pixel_values'], outputs: ['f'] }, { op: 'MatMul', inputs: ['f', 'w'], outputs: ['logits'] }],
      initializers: [{ name: 'w', dims: [784, 10], data: new Float32Array(7840).map((_, i) => Math.sin(i)) }],
      inputs: [{ name: 'pixel_values', dims: ['N', 1, 28, 28] }], outputs: [{ name: 'logits', dims: ['N', 10] }],
    }));
    writeFileSync(join(stage.dir, 'pixels.yaml'), 'fleet: px\ngroups:\n  - { name: p, count: 2, profile: pcm, models: [pixels.onnx], seed: 5 }\n');
    const out = join(stage.dir, 'pixels.json');
    const p = stage.start(['fleet', 'devices', join(stage.dir, 'pixels.yaml'), '--url', stage.broker.url, '--workers', '1', '--state-dir', join(stage.dir, 'px'), '--no-progress', '--out', out,
      '--scenario', 'singlestream', '--quick', '--min-duration', '1', '--min-queries', '12']);
    expect((await p.exit).code, p.log()).toBe(0);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    const run = r.scenarios[0]!;
    expect(run.queries).toBeGreaterThanOrEqual(12);
    expect(r.fleetScenario!.queries).toMatchObject({ issued: run.queries, completed: run.queries, lost: 0, duplicated: 0, unknown: 0 });
    expect(r.metrics!.fleet.results).toBe(run.queries);
    expect(Object.keys(r.metrics!.devices).sort()).toEqual(['p-0', 'p-1']);
    expect(p.log()).not.toContain('inference-failed');
  }, 240_000);

  it('SIGINT during fleet devices --scenario: a partial report of the queries completed, exit 130', async () => {
    writeFileSync(join(stage.dir, 'long.yaml'), 'fleet: long\ngroups:\n  - { name: d, count: 2, profile: pcm, models: [mlp], seed: 5, serviceTime: { distribution: fixed, meanMs: 50 } }\n');
    let results = 0;
    const watcher = mqtt.connect(stage.broker.url, { clientId: 'interrupt-watcher', reconnectPeriod: 0 });
    watcher.on('message', () => { results++; });
    await watcher.subscribeAsync('edgerun/long/+/results', { qos: 1 });
    const out = join(stage.dir, 'long.json');
    // LoadGen's full SingleStream: 600 s at least, far longer than this test waits.
    const p = stage.start(['fleet', 'devices', join(stage.dir, 'long.yaml'), '--url', stage.broker.url, '--workers', '1', '--state-dir', join(stage.dir, 'long'), '--no-progress', '--out', out, '--html', join(stage.dir, 'long.html'),
      '--scenario', 'singlestream']);
    await until('results flowing', () => (results >= 10 ? true : undefined), 120_000, p.log);
    p.proc.kill('SIGINT');
    const { code } = await p.exit;
    await watcher.endAsync();
    expect(code, p.log()).toBe(130);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    expect(r.interrupted).toMatchObject({ signal: 'SIGINT' });
    const run = r.scenarios[0]!;
    expect(run.interrupted).toBe(true);
    expect(run.valid).toBe(false);
    expect(run.invalidBecause.join()).toMatch(/interrupted after \d+ of \d+ queries/);
    expect(run.queries).toBeGreaterThanOrEqual(10);
    expect(run.latency.count).toBe(run.queries);
    expect(r.fleetScenario!.queries.completed).toBeGreaterThanOrEqual(run.queries);
    expect(r.fleetScenario!.valid).toBe(false);
    // The devices stopped cleanly: what they published reached the report's figures.
    expect(r.metrics!.fleet.results).toBeGreaterThanOrEqual(run.queries);
    expect(r.metrics!.fleet.lost).toBe(0);
    expect(p.log()).toMatch(/result \(partial: interrupted by SIGINT\)/);
    expect(await readFile(join(stage.dir, 'long.html'), 'utf8')).toMatch(/Partial: interrupted by SIGINT/);
  }, 240_000);

  it('SIGINT during fleet run: the scenario so far in the report, exit 130', async () => {
    const out = join(stage.dir, 'run.json');
    const p = stage.start(['fleet', 'run', 'models/mlp.onnx', '--scenario', 'SingleStream', '--backend', 'digital', '--no-progress', '--out', out]);
    await until('running', () => (p.log().includes('SingleStream: running') ? true : undefined), 120_000, p.log);
    await new Promise((r) => setTimeout(r, 1000)); // some queries
    p.proc.kill('SIGINT');
    const { code } = await p.exit;
    expect(code, p.log()).toBe(130);
    const r = JSON.parse(await readFile(out, 'utf8')) as FleetReport;
    expect(r.interrupted).toMatchObject({ signal: 'SIGINT' });
    expect(r.scenarios).toHaveLength(1);
    expect(r.scenarios[0]).toMatchObject({ scenario: 'SingleStream', interrupted: true, valid: false });
    expect(r.scenarios[0]!.queries).toBeGreaterThan(0);
  }, 120_000);
});
