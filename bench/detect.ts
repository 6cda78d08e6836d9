/**
 * `edgerun detect` end to end, digital vs analog-emulated (pcm), side by side: the synthetic camera
 * (96×96 at 240 fps, faster than either placement keeps up, so the latest frame wins and throughput is
 * the pipeline's) → scheduler → detector → decode/NMS/tracker → reporter (embedded broker, durable
 * outbox). Rounds alternate digital and analog (EDGERUN_BENCH_SECONDS per round, default 5, 2
 * rounds each). Prints frames/s, end-to-end latency p50/p99 (frame arrival → published) and the
 * share of time in frame decoding (check + resampling), inference (queue + run), post-processing
 * and publishing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../runtime/config.js';
import { LatencyRecorder } from '../runtime/latency.js';
import type { FrameTiming } from '../runtime/pipeline/detection-stream.js';
import { startDetector } from '../apps/edgerun/commands/detect.js';
import { fmt, median, report } from './measure.js';

interface Round { fps: number; p50: number; p99: number; shares: Record<'decode' | 'inference' | 'post' | 'publish', number> }

async function round(placement: 'digital' | 'analog', seconds: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'edgerun-bench-detect-'));
  const config = resolveConfig({
    flags: {
      placement: { default: placement }, power: { sensor: 'none' }, security: { keyDir: join(dir, 'keys') },
      mqtt: { telemetryIntervalMs: 1000 }, detect: { fps: 240 },
    },
  });
  const timings: FrameTiming[] = [];
  const running = await startDetector({ config, stateDir: dir, onFrame: (t) => timings.push(t) });
  // The first frames include warm-up (placement, wasm compilation): measured from the 10th on.
  while (timings.length < 10) await new Promise((r) => setTimeout(r, 20));
  const from = timings.length;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const measured = timings.slice(from);
  const elapsed = (performance.now() - t0) / 1000;
  await running.stop({ drainMs: 5000 });
  rmSync(dir, { recursive: true, force: true });
  const latency = new LatencyRecorder();
  const sum = { decode: 0, inference: 0, post: 0, publish: 0 };
  for (const t of measured) {
    latency.record(t.totalMs);
    sum.decode += t.decodeMs; sum.inference += t.inferenceMs; sum.post += t.postMs; sum.publish += t.publishMs;
  }
  const total = sum.decode + sum.inference + sum.post + sum.publish;
  const s = latency.summary();
  return {
    fps: measured.length / elapsed, p50: s.p50Ms, p99: s.p99Ms,
    shares: { decode: sum.decode / total, inference: sum.inference / total, post: sum.post / total, publish: sum.publish / total },
  };
}

export async function main(): Promise<void> {
  const seconds = Number(process.env.EDGERUN_BENCH_SECONDS ?? 5);
  console.log(`\n# detect end to end: synthetic camera 96×96 → detector.onnx → tracker → MQTT; digital vs analog (pcm emulator), alternating rounds of ${seconds} s`);
  const rounds: Record<'digital' | 'analog', Round[]> = { digital: [], analog: [] };
  for (let i = 0; i < 2; i++) {
    for (const p of i % 2 === 0 ? ['digital', 'analog'] as const : ['analog', 'digital'] as const) rounds[p].push(await round(p, seconds));
  }
  for (const p of ['digital', 'analog'] as const) {
    const rs = rounds[p];
    const m = (f: (r: Round) => number): number => median(rs.map(f));
    report(`${p}: frames/s`, fmt(m((r) => r.fps), 1));
    report(`${p}: latency p50 / p99 ms`, `${fmt(m((r) => r.p50), 1)} / ${fmt(m((r) => r.p99), 1)}`);
    report(`${p}: time share decode / inference / post / publish %`, (['decode', 'inference', 'post', 'publish'] as const).map((k) => fmt(m((r) => r.shares[k]) * 100, 1)).join(' / '));
  }
  report('analog / digital frames/s', `${fmt(median(rounds.analog.map((r, i) => r.fps / rounds.digital[i]!.fps)), 3)}×`);
}
