/**
 * The parts the fleet host is built from: fleet files expanded to device specs, one onnxruntime
 * session shared by many devices, the outbox on a storage that appends on the calling thread, and
 * the latency mean every device's telemetry reports.
 */
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandFleet, parseFleetFile, FleetFileError } from '../../runtime/fleet/fleet-file.js';
import { Random } from '../../drivers/crossbar/random.js';
import { SharedBackend } from '../../runtime/shared-backend.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { loadModel } from '../../runtime/model/load.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { Outbox } from '../../runtime/telemetry/outbox.js';
import { LatencyRecorder } from '../../runtime/latency.js';
import { repoRoot } from '../helpers/cli.js';

const rng = (seed: number): (() => number) => {
  const r = new Random(seed);
  return () => r.uniform();
};

describe('fleet files', () => {
  it('expands groups into devices: ids per group, consecutive seeds, the group\'s profile, age, models, rate and battery', () => {
    const fleet = expandFleet(parseFleetFile([
      'fleet: plant',
      'groups:',
      '  - { name: line, count: 12, profile: flash, age: 2h, models: [mlp, cnn], rateHz: 0.5, seed: 40, battery: { capacityWh: 3 } }',
      '  - { name: dock, count: 1, sign: true }',
    ].join('\n'), 'plant.yaml'), rng);
    expect(fleet.fleet).toBe('plant');
    expect(fleet.devices.map((d) => d.id)).toEqual([...Array.from({ length: 12 }, (_, i) => `line-${String(i).padStart(2, '0')}`), 'dock-0']);
    expect(fleet.devices[11]).toEqual({ id: 'line-11', group: 'line', profile: 'flash', seed: 51, ageS: 7200, models: ['mlp', 'cnn'], rateHz: 0.5, sign: false, battery: { capacityWh: 3, initialPct: 100, idleW: 0 } });
    expect(fleet.devices[12]).toEqual({ id: 'dock-0', group: 'dock', profile: 'pcm', seed: 0, ageS: 0, models: ['mlp'], rateHz: 1, sign: true });
  });

  it('generates the same fleet from the same seed, another from another seed, with exactly the devices asked for', () => {
    const a = expandFleet(parseFleetFile('{"fleet": "gen", "generate": {"devices": 1001, "seed": 7}}', 'gen.json'), rng);
    const b = expandFleet(parseFleetFile('{"fleet": "gen", "generate": {"devices": 1001, "seed": 7}}', 'gen.json'), rng);
    const c = expandFleet(parseFleetFile('{"fleet": "gen", "generate": {"devices": 1001, "seed": 8}}', 'gen.json'), rng);
    expect(a.devices).toHaveLength(1001);
    expect(new Set(a.devices.map((d) => d.id)).size).toBe(1001);
    expect(b).toEqual(a);
    expect(c.devices.map((d) => [d.profile, d.ageS, d.rateHz, d.seed])).not.toEqual(a.devices.map((d) => [d.profile, d.ageS, d.rateHz, d.seed]));
    expect(new Set(a.devices.map((d) => d.seed)).size).toBe(1001);
  });

  it('refuses a prototype key and an alias bomb with a one-line error', () => {
    expect(() => parseFleetFile('{"__proto__": {"x": 1}, "generate": {"devices": 1}}', 'p.json')).toThrow(FleetFileError);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    expect(() => parseFleetFile(bomb, 'bomb.yaml')).toThrow(/not a readable fleet file: .*alias/i);
  });

  it('deep nesting (flow, block or compact) is refused from the tokens, in one line, not with the engine\'s stack message; a foreign tag prints no warning', () => {
    const flow = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const block = ['fleet: f', 'devices:', ...Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}-`)].join('\n');
    const compact = `devices:\n  ${'- '.repeat(5000)}x`;
    for (const [text, name] of [[flow, 'flow.yaml'], [block, 'block.yaml'], [compact, 'compact.yaml']] as const) {
      expect(() => parseFleetFile(text, name)).toThrow(new RegExp(`^${name}: not a readable fleet file: nested more than 64 levels deep$`));
      expect(() => parseFleetFile(text, name)).not.toThrow(/Maximum call stack/);
    }
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      expect(() => parseFleetFile('!!js/function "x"', 'tag.yaml')).toThrow(/tag\.yaml: \(top level\): Invalid input: expected object/);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('SharedBackend', () => {
  it('gives every device the same onnxruntime session for the same model bytes, with onnxruntime\'s own outputs', async () => {
    const bytes = readFileSync(join(repoRoot, 'models/mlp.onnx'));
    const shared = new SharedBackend(new DigitalBackend());
    const own = new DigitalBackend();
    try {
      // Two devices that each read the file: equal bytes, different objects.
      const a = await shared.user().load(loadModel(new Uint8Array(bytes), { source: 'a' }));
      const b = await shared.user().load(loadModel(new Uint8Array(bytes), { source: 'b' }));
      expect(shared.sessions).toBe(1);
      const reference = await own.load(loadModel(new Uint8Array(bytes), { source: 'ref' }));
      const x = { input: { type: 'float32' as const, data: Float32Array.from({ length: 784 }, (_, i) => (i % 17) / 17), dims: [1, 1, 28, 28] } };
      const expected = Array.from((Object.values(await reference.run(x))[0]!.data as Float32Array));
      // One device letting go of the model does not take it from the other.
      await a.dispose();
      expect(Array.from((Object.values(await b.run(x))[0]!.data as Float32Array))).toEqual(expected);
      const other = await shared.user().load(loadModel(readFileSync(join(repoRoot, 'models/cnn.onnx')), { source: 'cnn' }));
      expect(other.inputs[0]!.name).toBeDefined();
      expect(shared.sessions).toBe(2);
    } finally {
      await shared.dispose();
      await own.dispose();
    }
  });
});

describe('FsStorage with appends on the calling thread', () => {
  it('holds an outbox journal that a reopened outbox recovers entry for entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-sync-appends-'));
    try {
      const storage = new FsStorage(dir, undefined, undefined, 'sync');
      const outbox = await Outbox.open(storage, { fsync: 'never' });
      const payloads = Array.from({ length: 50 }, (_, i) => new TextEncoder().encode(`result ${i}`));
      const entries = payloads.map((p, i) => outbox.append(i, 'results', p));
      await Promise.all(entries.map((e) => e.written));
      for (let i = 0; i < 20; i++) outbox.ack(i);
      await outbox.close();
      await storage.close();
      const reopened = await Outbox.open(new FsStorage(dir), { fsync: 'never' });
      expect(reopened.pending().map((e) => [e.seq, new TextDecoder().decode(e.payload)])).toEqual(payloads.slice(20).map((p, k) => [20 + k, new TextDecoder().decode(p)]));
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LatencyRecorder', () => {
  it('reports the mean of what it recorded (µs resolution) and 0 when empty', () => {
    const r = new LatencyRecorder();
    expect(r.summary()).toMatchObject({ count: 0, meanMs: 0 });
    for (const ms of [1, 2, 3.5, 100.25]) r.record(ms);
    expect(r.summary()).toMatchObject({ count: 4, meanMs: 26.688 });
    expect(r.summary().maxMs).toBeCloseTo(100.25, 0);
  });
});
