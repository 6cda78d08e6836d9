import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtemp, writeFile, cp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { edgerun, lastJson } from './helpers/cli.js';
import { linearReluModel } from './helpers/onnx-builder.js';
import { encodeTensor } from '../runtime/model/tensor.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgerun-cli-'));
  await writeFile(join(dir, 'lin.onnx'), linearReluModel(4, 3).bytes);
  return () => rm(dir, { recursive: true, force: true });
});

describe('edgerun CLI', () => {
  it('inspect, inspect --plan and check --backend analog take a model that zeros cannot run (a Slice step read from an input)', async () => {
    const model = 'test/fixtures/onnx-node/test_slice_neg/model.onnx';
    const plain = await edgerun(['inspect', model]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toMatch(/^edgerun: warning: .*shapes not observed, running the model on zeros failed \(.*'step' value cannot be 0\); only the shapes the model declares are shown\n$/);
    expect(plain.stdout).toMatch(/inputs: x float32\[20×10×5\], starts int64\[1\]/);
    const plan = await edgerun(['inspect', '--plan', '--profile', 'ideal', model]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/Slice\s+digital/);
    const check = await edgerun(['check', '--backend', 'analog', '--profile', 'ideal', 'test/fixtures/onnx-node/test_slice_neg']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/1 passed, 0 failed/);
  });

  it('--help lists every command with examples', async () => {
    const r = await edgerun(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['inspect', 'run', 'eval', 'check', 'demo']) expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    expect(r.stdout).toMatch(/Examples:/);
  });

  it('inspect prints a layer table with shapes, params, MACs and analog eligibility', async () => {
    const r = await edgerun(['inspect', 'models/mlp.onnx']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/#\s+name\s+op\s+input\s+output\s+params\s+MACs\s+analog\s+why/);
    expect(r.stdout).toMatch(/(Gemm|MatMul)\s+\[1×784\]\s+\[1×256\]\s+201k\s+201k\s+yes/);
    expect(r.stdout).toMatch(/3 analog-eligible node\(s\) holding 100\.0% of the MACs/);
  });

  it('inspect --plan shows the periphery\'s nodes; --periphery off gives the plan with every Relu and MaxPool in onnxruntime', async () => {
    const on = await edgerun(['inspect', 'models/cnn.onnx', '--plan', '--profile', 'pcm', '--json']);
    const off = await edgerun(['inspect', 'models/cnn.onnx', '--plan', '--profile', 'pcm', '--periphery', 'off', '--json']);
    expect([on.code, off.code]).toEqual([0, 0]);
    const targets = (out: string): string[] => (lastJson(out).nodes as { op: string; target: string }[]).map((n) => `${n.op}:${n.target}`);
    expect(targets(on.stdout)).toEqual(['Conv:analog', 'Relu:analog periphery', 'MaxPool:analog periphery', 'Conv:analog', 'Relu:analog periphery', 'MaxPool:analog periphery', 'Flatten:digital', 'Gemm:analog', 'Relu:analog periphery', 'Gemm:analog']);
    expect(targets(off.stdout)).toEqual(['Conv:analog', 'Relu:digital', 'MaxPool:digital', 'Conv:analog', 'Relu:digital', 'MaxPool:digital', 'Flatten:digital', 'Gemm:analog', 'Relu:digital', 'Gemm:analog']);
    expect([lastJson(on.stdout).digitalSegments, lastJson(off.stdout).digitalSegments]).toEqual([1, 3]);
    // The same conversions either way: the periphery changes what runs after the ADC, not the MVMs.
    expect(lastJson(on.stdout).adcPerInference).toBe(lastJson(off.stdout).adcPerInference);
  });

  it('inspect --json reports conv layers of the CNN as analog candidates', async () => {
    const r = await edgerun(['inspect', 'models/cnn.onnx', '--json']);
    expect(r.code).toBe(0);
    const nodes = lastJson(r.stdout).nodes as { op: string; mvm: boolean; macs: number; params: number }[];
    const convs = nodes.filter((n) => n.op === 'Conv');
    expect(convs.map((n) => [n.mvm, n.params, n.macs])).toEqual([[true, 16 * 9 + 16, 16 * 26 * 26 * 9], [true, 32 * 16 * 9 + 32, 32 * 11 * 11 * 144]]);
    expect(nodes.filter((n) => n.op === 'Relu').every((n) => !n.mvm)).toBe(true);
  });

  it('run takes JSON and TensorProto inputs and prints top-k', async () => {
    await writeFile(join(dir, 'in.json'), JSON.stringify({ x: [[1, 2, 3, 4]] }));
    const json = await edgerun(['run', join(dir, 'lin.onnx'), '--input', join(dir, 'in.json'), '--json']);
    expect(json.code).toBe(0);
    const out = (lastJson(json.stdout).outputs as Record<string, { dims: number[]; data: number[] }>).y!;
    expect(out.dims).toEqual([1, 3]);
    const { w, b } = linearReluModel(4, 3);
    out.data.forEach((v, c) => expect(v).toBeCloseTo(Math.max(0, b[c]! + [1, 2, 3, 4].reduce((s, x, k) => s + x * w[k * 3 + c]!, 0)), 4));

    await writeFile(join(dir, 'input_0.pb'), encodeTensor({ type: 'float32', data: Float32Array.from([1, 2, 3, 4]), dims: [1, 4] }, 'x'));
    const pb = await edgerun(['run', join(dir, 'lin.onnx'), '--input', join(dir, 'input_0.pb'), '--top-k', '2']);
    expect(pb.code).toBe(0);
    expect(pb.stdout).toMatch(/y float32\[1×3\]\n\s+\[0\] top-2: \d \(-?\d+\.\d{4}\), \d \(-?\d+\.\d{4}\)/);
  });

  it('run --random --repeat reports latency', async () => {
    const r = await edgerun(['run', 'models/cnn.onnx', '--random', '--repeat', '20', '--batch', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/logits float32\[2×10\]/);
    expect(r.stdout).toMatch(/digital: 20 run\(s\), p50 [\d.]+ ms, p99 [\d.]+ ms/);
  });

  it('eval --json ends with one JSON object holding accuracy and latency', async () => {
    const r = await edgerun(['eval', 'models/mlp.onnx', '--data', 'models/data/fashion-mnist-test-2000.bin', '--limit', '300', '--json']);
    expect(r.code).toBe(0);
    const result = lastJson(r.stdout) as { accuracy: number; samples: number; latency: { p50Ms: number; p99Ms: number }; samplesPerSecond: number };
    expect(result.samples).toBe(300);
    expect(result.accuracy).toBeGreaterThan(0.8);
    expect(result.latency.p99Ms).toBeGreaterThanOrEqual(result.latency.p50Ms);
    expect(result.samplesPerSecond).toBeGreaterThan(0);
  });

  it('check passes the bundled conformance directory and fails a tampered one', async () => {
    const ok = await edgerun(['check', 'models/conformance/cnn', '--json']);
    expect(ok.code).toBe(0);
    const report = lastJson(ok.stdout) as { passed: number; failed: number; sets: { maxAbsError: number }[] };
    expect(report.failed).toBe(0);
    expect(report.passed).toBeGreaterThanOrEqual(3);

    const bad = join(dir, 'tampered');
    await cp('models/conformance/mlp', bad, { recursive: true });
    await writeFile(join(bad, 'test_data_set_0', 'output_0.pb'), encodeTensor({ type: 'float32', data: new Float32Array(10).fill(42), dims: [1, 10] }, 'logits'));
    const fail = await edgerun(['check', bad]);
    expect(fail.code).toBe(1);
    expect(fail.stdout).toMatch(/test_data_set_0\s+[\d.e+]+\s+\d+\s+FAIL/);
    expect(fail.stdout).toMatch(/passed, 1 failed/);
  });

  it('a corrupt model exits non-zero with the reason, and config errors name the field', async () => {
    await writeFile(join(dir, 'junk.onnx'), 'definitely not a model');
    const junk = await edgerun(['inspect', join(dir, 'junk.onnx')]);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/edgerun: .*junk\.onnx: /);

    const cfg = await edgerun(['run', join(dir, 'lin.onnx'), '--random'], { EDGERUN_DIGITAL__THREADS: '-1' });
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toMatch(/digital\.threads: .*EDGERUN_DIGITAL__THREADS/);
  });
});

describe('compiled build (npm run build → dist/)', () => {
  it('runs the CLI without a TypeScript compiler, profiles included', { timeout: 240_000 }, async () => {
    const { execFile } = await import('node:child_process');
    const { repoRoot } = await import('./helpers/cli.js');
    const sh = (cmd: string, args: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(cmd, args, { cwd: repoRoot, maxBuffer: 16 << 20 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout, err: stderr }));
    });
    const build = await sh('npm', ['run', 'build']);
    expect(build.code, build.out + build.err).toBe(0);
    const run = await sh(process.execPath, ['dist/apps/edgerun/main.js', 'run', 'models/mlp.onnx', '--random', '--backend', 'analog', '--profile', 'pcm', '--json']);
    expect(run.code, run.err).toBe(0);
    expect(lastJson(run.out).backend).toBe('analog');
  });
});
