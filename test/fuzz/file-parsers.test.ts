/**
 * Property-based fuzzing (fast-check) of every parser of file bytes edgerun owns: ONNX models,
 * TensorProto .pb inputs, JSON inputs, EDGD data sets, config files and device profiles. Each
 * input either parses or is refused with the parser's own error class and a one-line message —
 * never a TypeError/RangeError from the engine, a hang or a huge allocation. Run counts are
 * bounded (seconds); failures print a seed to replay, and found cases are the named regressions
 * at the end.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadModel } from '../../runtime/model/load.js';
import { ModelError } from '../../runtime/model/errors.js';
import { encodeTensor, parseTensorFile } from '../../runtime/model/tensor.js';
import { feedsFromJson } from '../../runtime/model/json-input.js';
import { validateFeeds } from '../../runtime/model/feeds.js';
import { JsonError, parseJson } from '../../runtime/json.js';
import { DatasetError, parseDataset } from '../../runtime/dataset.js';
import { ConfigError, resolveConfig } from '../../runtime/config.js';
import { ProfileError, loadProfile, parseProfile } from '../../drivers/crossbar/profile.js';
import { linearReluModel } from '../helpers/onnx-builder.js';
import type { IOSpec } from '../../runtime/model/load.js';

const RUNS = { numRuns: 400 };

/** Runs `parse`; a refusal must be one of `kinds`, with a one-line message. Returns whether it parsed. */
function parsesOrRefuses(parse: () => unknown, kinds: (new (...a: never[]) => Error)[]): boolean {
  try {
    parse();
    return true;
  } catch (e) {
    if (!kinds.some((k) => e instanceof k)) throw new Error(`escaped as ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
    const message = (e as Error).message;
    // Config and profile errors list one issue per line; each line is self-contained.
    expect(message.length).toBeGreaterThan(0);
    if (!(e instanceof ConfigError) && !(e instanceof ProfileError)) expect(message).not.toMatch(/\n/);
    return false;
  }
}

/** Byte-level mutations of a valid file: flips, truncation, splices, inserted junk. */
function mutated(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const flips = fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
    .map((edits) => { const b = valid.slice(); for (const [i, v] of edits) b[i] = v; return b; });
  const truncated = fc.nat(valid.length).map((n) => valid.subarray(0, n));
  const inserted = fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 64 }))
    .map(([at, junk]) => Uint8Array.from([...valid.subarray(0, at), ...junk, ...valid.subarray(at)]));
  return fc.oneof(flips, truncated, inserted, fc.uint8Array({ maxLength: 512 }));
}

describe('ONNX models', () => {
  const valid = linearReluModel(4, 3).bytes;
  it('loadModel: mutated and random bytes load or are refused with a ModelError', () => {
    fc.assert(fc.property(mutated(valid), (bytes) => { parsesOrRefuses(() => loadModel(bytes, { source: 'fuzz.onnx' }), [ModelError]); }), RUNS);
  });
});

describe('TensorProto .pb inputs', () => {
  const valid = encodeTensor({ type: 'float32', data: Float32Array.from([1, 2, 3, 4]), dims: [1, 4] }, 'x');
  it('parseTensorFile: mutated and random bytes parse or are refused with a ModelError, without allocating from the dims', () => {
    fc.assert(fc.property(mutated(valid), (bytes) => {
      const before = process.memoryUsage().arrayBuffers;
      parsesOrRefuses(() => parseTensorFile(bytes, 'fuzz.pb'), [ModelError]);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
    }), RUNS);
  });
});

describe('JSON inputs', () => {
  const spec: IOSpec[] = [{ name: 'x', type: 'float32', dims: ['N', 4] }, { name: 'k', type: 'int64', dims: [2] }];
  const run = (text: string): void => {
    const feeds = feedsFromJson(parseJson(text, 'fuzz.json'), spec, 'fuzz.json');
    validateFeeds(spec.filter((s) => s.name in feeds), feeds, 'fuzz.json');
  };
  it('arbitrary JSON values are accepted as feeds or refused with ModelError/JsonError', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => { parsesOrRefuses(() => run(JSON.stringify(v)), [ModelError, JsonError]); }), RUNS);
  });
  it('shaped like inputs: explicit dims/data objects with hostile dims, types and values', () => {
    const value = fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 3 }), fc.constant(null));
    const tensor = fc.record({ dims: fc.array(fc.oneof(fc.integer({ min: -2, max: 8 }), fc.string({ maxLength: 2 }), fc.double()), { maxLength: 4 }), data: fc.array(value, { maxLength: 40 }), type: fc.constantFrom('float32', 'int64', 'int8', 'string', 'bogus') }, { requiredKeys: ['dims', 'data'] });
    fc.assert(fc.property(fc.dictionary(fc.constantFrom('x', 'k', 'y', '__proto__', 'constructor'), fc.oneof(tensor, fc.array(fc.array(value, { maxLength: 5 }), { maxLength: 3 }))), (feeds) => {
      // 1e999 is what a file can hold for Infinity: JSON.stringify would write null.
      const text = JSON.stringify(feeds).replaceAll('null', '1e999');
      parsesOrRefuses(() => run(text), [ModelError, JsonError]);
    }), RUNS);
  });
  it('text: random strings and deep or broken nesting are refused with a JsonError', () => {
    const nested = fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom('[', '{"a":')).map(([n, open]) => `${open.repeat(n)}1${(open === '[' ? ']' : '}').repeat(n)}`);
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), nested), (text) => { parsesOrRefuses(() => run(text), [ModelError, JsonError]); }), RUNS);
  });
});

describe('EDGD data sets', () => {
  const valid = (() => {
    const header = new DataView(new ArrayBuffer(24));
    new Uint8Array(header.buffer).set(new TextEncoder().encode('EDGD'));
    [1, 3, 1, 2, 2].forEach((v, i) => header.setUint32(4 + 4 * i, v, true));
    return Uint8Array.from([...new Uint8Array(header.buffer), 0, 1, 2, ...new Uint8Array(12)]);
  })();
  it('parseDataset: mutated headers and bytes parse or are refused with a DatasetError', () => {
    const header = fc.tuple(fc.constantFrom(4, 8, 12, 16, 20), fc.oneof(fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1), fc.nat())).map(([off, v]) => {
      const b = valid.slice();
      new DataView(b.buffer).setUint32(off, v >>> 0, true);
      return b;
    });
    fc.assert(fc.property(fc.oneof(header, mutated(valid)), (bytes) => { parsesOrRefuses(() => parseDataset(bytes, 'fuzz.bin'), [DatasetError]); }), RUNS);
  });
});

describe('config files', () => {
  const keys = fc.constantFrom('device', 'digital', 'analog', 'model', 'mqtt', 'outbox', 'threads', 'maxSizeMiB', 'segmentBytes', 'id', '__proto__', 'constructor', 'x');
  const leaf = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null));
  const tree = fc.letrec((tie) => ({ node: fc.oneof({ depthSize: 'small' }, leaf, fc.dictionary(keys, tie('node'), { maxKeys: 4 }), fc.array(tie('node'), { maxLength: 3 })) })).node;
  it('random documents resolve or are refused with a ConfigError', () => {
    fc.assert(fc.property(fc.oneof(tree.map((v) => JSON.stringify(v)), fc.string({ maxLength: 100 })), (text) => {
      parsesOrRefuses(() => resolveConfig({ file: { path: 'fuzz.json', text } }), [ConfigError]);
      // Whatever the file said, the shared prototype is untouched.
      expect(({} as Record<string, unknown>).threads).toBeUndefined();
    }), RUNS);
  });
});

describe('device profiles', () => {
  const pcm = loadProfile('pcm');
  const fields = ['gMax', 'outputNoise', 'tile.rows', 'adc.bound', 'adc.bits', 'drift.t0', 'drift.nuMean.max', 'readNoise.qsCoeff', 'temperature.coefficient', 'temperature.initial', 'irDrop.wireResistance', 'programmingNoise.scale'];
  const hostile = fc.oneof(fc.double(), fc.constantFrom(1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE, -0, 0, 2 ** 53), fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null));
  it('a profile with hostile constants is accepted only within its bounds (or refused with a ProfileError)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...fields), hostile), { minLength: 1, maxLength: 4 }), (edits) => {
      const raw = structuredClone(pcm) as unknown as Record<string, unknown>;
      for (const [path, value] of edits) {
        const keys = path.split('.');
        let node = raw;
        for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
        node[keys[keys.length - 1]!] = value;
      }
      if (parsesOrRefuses(() => parseProfile(raw, 'fuzz profile'), [ProfileError])) {
        const p = parseProfile(raw, 'fuzz profile');
        expect(p.gMax).toBeLessThanOrEqual(10_000);
        expect(Number.isFinite(p.outputNoise) && Number.isFinite(p.temperature.coefficient)).toBe(true);
      }
    }), RUNS);
  });
});

describe('regressions found by fuzzing and by hand', () => {
  it('an ONNX file nesting sub-graphs 30,000 deep is refused with a ModelError, not a stack overflow message', () => {
    const varint = (n: number): number[] => { const out: number[] = []; do { out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n); return out; };
    // GraphProto.node → NodeProto{op_type 'If', attribute} → AttributeProto{name 'g', type GRAPH, g} → GraphProto …
    // Every level's inner graph comes last, so the file is the levels' prefixes, outermost first.
    const levels: { node: number; attr: number; inner: number }[] = [];
    let inner = 0;
    for (let i = 0; i < 30_000; i++) {
      const attr = 3 + 3 + 1 + varint(inner).length + inner;
      const node = 4 + 1 + varint(attr).length + attr;
      levels.push({ node, attr, inner });
      inner = 1 + varint(node).length + node;
    }
    const bytes: number[] = [0x08, 8, 0x3a, ...varint(inner)];
    for (const l of levels.reverse()) bytes.push(0x0a, ...varint(l.node), 0x22, 2, 0x49, 0x66, 0x2a, ...varint(l.attr), 0x0a, 1, 0x67, 0xa0, 0x01, 5, 0x32, ...varint(l.inner));
    bytes.push(0x42, 2, 0x10, 17);
    const model = Uint8Array.from(bytes);
    expect(() => loadModel(model, { source: 'deep.onnx' })).toThrow(new ModelError('CORRUPT', 'deep.onnx: not a valid ONNX file (truncated or not protobuf): sub-graphs nested too deeply to decode'));
  });

  it('JSON int64 values that are not finite are refused, not thrown from BigInt', () => {
    const spec: IOSpec[] = [{ name: 'k', type: 'int64', dims: [1] }];
    expect(() => feedsFromJson(parseJson('{"k": [1e999]}', 'f.json'), spec, 'f.json')).toThrow(/Infinity is not a valid int64 value/);
  });
  it('EDGD samples of 0×h×w are refused', () => {
    const header = new DataView(new ArrayBuffer(24));
    new Uint8Array(header.buffer).set(new TextEncoder().encode('EDGD'));
    [1, 2, 0, 28, 28].forEach((v, i) => header.setUint32(4 + 4 * i, v, true));
    expect(() => parseDataset(Uint8Array.from([...new Uint8Array(header.buffer), 0, 0]), 'z.bin')).toThrow(/samples of 0×28×28 hold no pixels/);
  });
});
