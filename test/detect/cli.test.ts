/** `edgerun detect` and `eval --task detect` as a user runs them: bad input is one line and exit 2; the eval reproduces training's mAP. */
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edgerun, lastJson } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-detect-cli-'));
const env = { EDGERUN_POWER__SENSOR: 'none', EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys') };

describe('edgerun detect / eval --task detect (CLI)', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('refuses bad input with one line and exit 2', { timeout: 120_000 }, async () => {
    const notDetector = await edgerun(['detect', '--model', 'models/cnn.onnx', '--state-dir', join(dir, 's1')], env);
    expect(notDetector.code).toBe(2);
    expect(notDetector.stderr.trim()).toMatch(/^edgerun: models\/cnn\.onnx: not a grid-head detector \(metadata edgerun\.head is null, expected "grid-yolo"\)$/);
    writeFileSync(join(dir, 'zones.json'), '{"door": [[0, 0], [1, 1]]}');
    const badZone = await edgerun(['detect', '--zones', join(dir, 'zones.json'), '--state-dir', join(dir, 's2')], env);
    expect(badZone.code).toBe(2);
    expect(badZone.stderr).toMatch(/detect\.zones\.door: .*(>=3|at least 3)/);
    const scenesAsClassifier = await edgerun(['eval', 'models/detector.onnx', '--task', 'detect', '--data', 'models/data/fashion-mnist-test-2000.bin'], env);
    expect(scenesAsClassifier.code).toBe(2);
    expect(scenesAsClassifier.stderr.trim()).toBe('edgerun: models/data/fashion-mnist-test-2000.bin: not an EDGS scene set (expected the magic bytes "EDGS")');
  });

  it('a source that cannot start ends the process: exit 2, one line (it stayed alive on the embedded broker, or retried a missing file forever)', { timeout: 180_000 }, async () => {
    const oneLine = async (args: string[], want: RegExp): Promise<void> => {
      const r = await edgerun(['detect', ...args, '--frames', '1', '--quiet', '--state-dir', join(dir, 's3')], env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(want)]);
    };
    await oneLine(['--source', `dir:${join(dir, 'no-such-dir')}`], /^edgerun: image directory .*no-such-dir: does not exist$/);
    writeFileSync(join(dir, 'a-file'), 'not a directory');
    await oneLine(['--source', `dir:${join(dir, 'a-file')}`], /^edgerun: image directory .*a-file: is not a directory$/);
    await oneLine(['--source', join(dir, 'no-such-video.mp4')], /^edgerun: --source .*no-such-video\.mp4: no such file/);
    await oneLine(['--size', '100000x100000'], /^edgerun: synthetic camera: size 100000×100000 \(at least 32×32, at most 4096×4096\)$/);
  });

  it('eval --task detect reproduces the digital mAP@0.5 recorded by training (PyTorch, same decoding)', { timeout: 180_000 }, async () => {
    const metrics = JSON.parse(await readFile('models/metrics.json', 'utf8')) as { detector: { heldout_map50_voc: number } };
    const r = await edgerun(['eval', 'models/detector.onnx', '--task', 'detect', '--data', 'models/data/scenes-300.bin', '--batch', '50', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout) as { scenes: number; digital: { map: number; perLabel: { label: string; positives: number }[] } };
    expect(out.scenes).toBe(300);
    expect(out.digital.perLabel.reduce((a, l) => a + l.positives, 0)).toBe(902);
    expect(Math.abs(out.digital.map - metrics.detector.heldout_map50_voc)).toBeLessThanOrEqual(0.01);
    expect(out.digital.map, 'issue 15: the bundled detector reaches digital mAP@0.5 >= 0.80').toBeGreaterThanOrEqual(0.8);
  });
});
