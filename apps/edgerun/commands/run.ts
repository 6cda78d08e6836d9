import { FILE_LIMITS, readFileLimited, readTextLimited } from '../../../drivers/storage/read-file.js';
import { parseJson } from '../../../runtime/json.js';
import type { Feeds } from '../../../runtime/model/feeds.js';
import { feedsFromJson } from '../../../runtime/model/json-input.js';
import { allocatableCount, parseTensorFile, type TensorData } from '../../../runtime/model/tensor.js';
import type { IOSpec } from '../../../runtime/model/load.js';
import { LatencyRecorder } from '../../../runtime/latency.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';

const MAX_JSON_VALUES = 2 ** 24;

export interface RunOptions {
  input?: string[];
  random?: boolean;
  inputSeed: number;
  batch: number;
  repeat: number;
  topK: number;
  backend: string;
  json?: boolean;
}

export async function runCommand(path: string, opts: RunOptions, global: GlobalOptions & DeviceOptions): Promise<void> {
  const config = await loadConfig(global);
  const model = await readModel(path, config);
  const registry = createRegistry(config);
  try {
    const backend = await registry.get(opts.backend);
    const prepared = await backend.load(model);
    const feeds = opts.random || !opts.input?.length ? randomFeeds(model.inputs, opts.batch, opts.inputSeed) : await readInputs(opts.input, model.inputs);
    if (!opts.random && !opts.input?.length) console.error('no --input given: using --random inputs');
    const latency = new LatencyRecorder();
    let outputs: Record<string, TensorData> = {};
    for (let i = 0; i < Math.max(1, opts.repeat); i++) {
      const t0 = performance.now();
      outputs = await prepared.run(feeds);
      latency.record(performance.now() - t0);
    }
    const lat = latency.summary();
    if (opts.json) {
      const values = Object.values(outputs).reduce((n, t) => n + t.data.length, 0);
      // One JSON line must fit in a JavaScript string (~512 Mi characters, ~20 per value).
      if (values > MAX_JSON_VALUES) throw new Error(`--json: the outputs hold ${values} values, more than the ${MAX_JSON_VALUES} one JSON line can carry; print without --json`);
      const out = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: Array.from(t.data as ArrayLike<number>, Number) }]));
      console.log(JSON.stringify({ model: path, backend: backend.name, outputs: out, latency: lat, rssMB: process.memoryUsage().rss / 2 ** 20 }));
    } else {
      for (const [name, t] of Object.entries(outputs)) console.log(describeOutput(name, t, opts.topK));
      console.log(`\n${backend.name}: ${lat.count} run(s), p50 ${lat.p50Ms} ms, p99 ${lat.p99Ms} ms`);
    }
    await prepared.dispose();
  } finally {
    await registry.dispose();
  }
}

async function readInputs(files: string[], inputs: readonly IOSpec[]): Promise<Feeds> {
  const json = files.filter((f) => f.endsWith('.json'));
  if (json.length && files.length > 1) throw new Error(`--input ${json[0]}: a JSON file holds every input of the model; give it alone (or give .pb files)`);
  if (files.length === 1 && files[0]!.endsWith('.json')) return feedsFromJson(parseJson(await readTextLimited(files[0]!, FILE_LIMITS.json, 'input file'), files[0]!), inputs, files[0]);
  const feeds: Feeds = {};
  const given = new Map<string, string>();
  for (const [k, file] of files.entries()) {
    const t = parseTensorFile(await readFileLimited(file, FILE_LIMITS.binary, 'input file'), file);
    // ONNX test data name tensors after the graph input; unnamed ones map by position.
    const spec = inputs.find((i) => i.name === t.name) ?? inputs[k];
    if (!spec) throw new Error(`${file}: the model has only ${inputs.length} input(s)`);
    const earlier = given.get(spec.name);
    if (earlier !== undefined) throw new Error(`--input: '${spec.name}' is given twice (${earlier} and ${file})`);
    given.set(spec.name, file);
    feeds[spec.name] = t;
  }
  return feeds;
}

/** Uniform [0, 1) inputs from a small seeded generator (mulberry32), symbolic dims set to `batch`. */
export function randomFeeds(inputs: readonly IOSpec[], batch: number, seed: number): Feeds {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const feeds: Feeds = {};
  for (const input of inputs) {
    const dims = input.dims.map((d) => (typeof d === 'number' ? d : batch));
    if (input.type !== 'float32') throw new Error(`--random supports float32 inputs only; '${input.name}' is ${input.type}`);
    const n = allocatableCount(dims, 4, `--random input '${input.name}'`);
    feeds[input.name] = { type: 'float32', data: Float32Array.from({ length: n }, next), dims };
  }
  return feeds;
}

function describeOutput(name: string, t: TensorData, topK: number): string {
  const data = t.data as ArrayLike<number>;
  const classes = t.dims[t.dims.length - 1] ?? data.length;
  const lines = [`${name} ${t.type}[${t.dims.join('×')}]`];
  if (t.dims.length <= 2 && classes > 1 && classes <= 1000 && typeof data[0] === 'number') {
    for (let r = 0; r < data.length / classes; r++) {
      const row = Array.from({ length: classes }, (_, c) => ({ c, v: data[r * classes + c]! }));
      row.sort((a, b) => b.v - a.v);
      lines.push(`  [${r}] top-${Math.min(topK, classes)}: ${row.slice(0, topK).map((e) => `${e.c} (${e.v.toFixed(4)})`).join(', ')}`);
    }
  } else {
    lines.push(`  ${Array.from(data).slice(0, 16).map(Number).join(', ')}${data.length > 16 ? ', …' : ''}`);
  }
  return lines.join('\n');
}
