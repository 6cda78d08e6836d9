/**
 * Inference inputs written as JSON, in any of three forms:
 *   { "input": { "dims": [1, 4], "data": [..], "type": "float32" } }   explicit
 *   { "input": [[0.1, 0.2, 0.3, 0.4]] }                                 nested arrays, per input
 *   [[0.1, 0.2, 0.3, 0.4]]                                             nested arrays, single-input model
 */
import { ModelError } from './errors.js';
import type { IOSpec } from './load.js';
import type { Feeds } from './feeds.js';
import type { TensorData } from './tensor.js';

export function feedsFromJson(value: unknown, inputs: readonly IOSpec[], source = 'input JSON'): Feeds {
  if (Array.isArray(value)) {
    if (inputs.length !== 1) throw new ModelError('BAD_INPUT', `${source}: a bare array only works for single-input models; give an object keyed by input name (${inputs.map((i) => i.name).join(', ')})`);
    return { [inputs[0]!.name]: tensorFromJson(value, inputs[0]!, source) };
  }
  if (typeof value !== 'object' || value === null) throw new ModelError('BAD_INPUT', `${source}: expected an object keyed by input name or an array`);
  const feeds: Feeds = {};
  for (const [name, v] of Object.entries(value)) {
    const spec = inputs.find((i) => i.name === name);
    if (!spec) throw new ModelError('BAD_INPUT', `${source}: unknown input '${name}'; the model's inputs are ${inputs.map((i) => `'${i.name}'`).join(', ')}`);
    feeds[name] = tensorFromJson(v, spec, `${source} '${name}'`);
  }
  return feeds;
}

function tensorFromJson(v: unknown, spec: IOSpec, source: string): TensorData {
  if (Array.isArray(v)) {
    const dims: number[] = [];
    for (let level: unknown = v; Array.isArray(level); level = level[0]) dims.push(level.length);
    const flat = (v as unknown[]).flat(Infinity);
    return toTensor(flat, dims, spec.type, source);
  }
  if (typeof v === 'object' && v !== null && 'data' in v && 'dims' in v) {
    const { data, dims, type } = v as { data: unknown; dims: unknown; type?: unknown };
    if (!Array.isArray(data) || !Array.isArray(dims)) throw new ModelError('BAD_INPUT', `${source}: "data" and "dims" must be arrays`);
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelError('BAD_INPUT', `${source}: "dims" must be whole numbers ≥ 0, got ${JSON.stringify(dims)}`);
    }
    return toTensor(data, dims as number[], typeof type === 'string' ? type : spec.type, source);
  }
  throw new ModelError('BAD_INPUT', `${source}: expected nested arrays or { "dims": [..], "data": [..] }`);
}

function toTensor(values: unknown[], dims: number[], type: string, source: string): TensorData {
  if (values.some((x) => typeof x !== 'number' && typeof x !== 'boolean')) throw new ModelError('BAD_INPUT', `${source}: every value must be a number (ragged arrays are not allowed)`);
  const nums = values as number[];
  switch (type) {
    case 'float32': return { type, data: Float32Array.from(nums), dims };
    case 'float64': return { type, data: Float64Array.from(nums), dims };
    case 'int32': return { type, data: Int32Array.from(nums), dims };
    case 'int64': {
      const bad = nums.find((n) => typeof n === 'number' && !Number.isFinite(n));
      if (bad !== undefined) throw new ModelError('BAD_INPUT', `${source}: ${bad} is not a valid int64 value`);
      return { type, data: BigInt64Array.from(nums.map((n) => BigInt(Math.trunc(n)))), dims };
    }
    case 'uint8': case 'bool': return { type, data: Uint8Array.from(nums), dims };
    case 'int8': return { type, data: Int8Array.from(nums), dims };
    default: throw new ModelError('BAD_INPUT', `${source}: inputs of type ${type} cannot be given as JSON`);
  }
}
