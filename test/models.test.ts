import { afterAll, describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { loadModel } from '../runtime/model/load.js';
import { ModelError } from '../runtime/model/errors.js';
import { onnx, type ModelProto } from '../runtime/model/onnx.js';
import { parseDataset } from '../runtime/dataset.js';
import { evaluate } from '../runtime/evaluate.js';
import { resolveConfig } from '../runtime/config.js';
import { checkDirectory } from '../apps/edgerun/commands/check.js';

const metrics = JSON.parse(await readFile('models/metrics.json', 'utf8')) as Record<string, { subset_accuracy: number }>;
const subset = parseDataset(await readFile('models/data/fashion-mnist-test-2000.bin'), 'subset');
const backend = new DigitalBackend();
afterAll(() => backend.dispose());

describe.each(['mlp', 'cnn'])('trained model %s', (name) => {
  it('reaches on the subset the accuracy recorded by training (within 0.5 points)', async () => {
    const model = loadModel(await readFile(`models/${name}.onnx`), { source: name });
    const prepared = await backend.load(model);
    const result = await evaluate(prepared, subset, { batchSize: 50 });
    expect(result.samples).toBe(2000);
    expect(Math.abs(result.accuracy - metrics[name]!.subset_accuracy)).toBeLessThanOrEqual(0.005);
    await prepared.dispose();
  });

  it('refuses generated corruptions of the real file with specific errors', async () => {
    const bytes = new Uint8Array(await readFile(`models/${name}.onnx`));
    for (const fraction of [0.01, 0.1, 0.5, 0.9, 0.999]) {
      expect(() => loadModel(bytes.subarray(0, Math.floor(bytes.length * fraction))), `truncated to ${fraction}`).toThrow(ModelError);
    }
    const codeOf = (mutate: (m: ModelProto) => void): string => {
      const proto = onnx.ModelProto.decode(bytes) as ModelProto;
      mutate(proto);
      try {
        loadModel(onnx.ModelProto.encode(proto).finish());
        return 'loaded';
      } catch (e) {
        return (e as ModelError).code;
      }
    };
    expect(codeOf((m) => { m.graph!.initializer!.shift(); })).toBe('MISSING_INPUT');
    expect(codeOf((m) => { m.opsetImport![0]!.version = 25; })).toBe('UNKNOWN_OPSET');
    expect(codeOf((m) => { m.graph!.input = []; })).toBe('NO_INPUTS');
    expect(codeOf((m) => { m.graph!.output![0]!.name = 'renamed'; })).toBe('DANGLING_OUTPUT');
    expect(codeOf((m) => { const t = m.graph!.initializer![0]!; t.rawData = t.rawData!.subarray(4); })).toBe('BAD_TENSOR');
    // Garbage where the graph field starts: the protobuf no longer parses.
    const smashed = bytes.slice();
    const graphAt = smashed.findIndex((b, i) => b === 0x3a && i > 0); // field 7 (graph), wire type 2
    smashed.fill(0xff, graphAt, graphAt + 16);
    expect(() => loadModel(smashed)).toThrow(ModelError);
  });
});

describe('ONNX test-data directories on the digital backend', async () => {
  const dirs = (await readdir('models/conformance')).sort();
  const config = resolveConfig();
  it.each(dirs)('%s passes', async (dir) => {
    const reports = await checkDirectory(`models/conformance/${dir}`, { backend: 'digital', rtol: 1e-3, atol: 1e-5 }, config);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const r of reports) expect(r, `${dir}/${r.name}`).toMatchObject({ pass: true, mismatches: 0 });
  });
});
