/** Checks inference inputs against a model's declared inputs, with errors a user can act on. */
import { ModelError } from './errors.js';
import type { IOSpec } from './load.js';
import { elementCount, type TensorData } from './tensor.js';

export type Feeds = Record<string, TensorData>;

export function validateFeeds(inputs: readonly IOSpec[], feeds: Feeds, source = 'model'): void {
  // Runs before every inference: plain loops, no allocation on the success path.
  let given = 0;
  for (const name in feeds) if (Object.hasOwn(feeds, name)) given++;
  let known = 0;
  for (const spec of inputs) if (Object.hasOwn(feeds, spec.name)) known++;
  if (given !== known) {
    const unknown = Object.keys(feeds).find((name) => !inputs.some((i) => i.name === name))!;
    throw new ModelError('BAD_INPUT', `${source}: unknown input '${unknown}'; the model's inputs are ${describe(inputs)}`);
  }
  for (const spec of inputs) {
    const t = feeds[spec.name];
    if (!t) throw new ModelError('BAD_INPUT', `${source}: missing input '${spec.name}' (${spec.type} ${dimsText(spec.dims)})`);
    if (t.type !== spec.type) {
      throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must be ${spec.type}, got ${t.type}`);
    }
    if (!spec.anyRank) {
      if (t.dims.length !== spec.dims.length) {
        throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must have shape ${dimsText(spec.dims)} (rank ${spec.dims.length}), got ${givenDims(t.dims)}`);
      }
      for (let axis = 0; axis < spec.dims.length; axis++) {
        const want = spec.dims[axis]!;
        const got = t.dims[axis] ?? -1;
        if (!Number.isInteger(got) || got < 0) {
          throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' has dims ${givenDims(t.dims)}; every dim must be a whole number ≥ 0 (axis ${axis})`);
        }
        if (typeof want === 'number' && got !== want) {
          throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must have shape ${dimsText(spec.dims)}, got ${givenDims(t.dims)} (axis ${axis})`);
        }
      }
    } // else only the type and the payload length can be checked
    if (t.data.length !== elementCount(t.dims)) {
      throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' has ${t.data.length} values but shape [${t.dims.join(', ')}] needs ${elementCount(t.dims)}`);
    }
  }
}

export function dimsText(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}

/** Dims as given, strings quoted: ["1", 4] must not read like [1, 4]. */
function givenDims(dims: readonly unknown[]): string {
  return JSON.stringify(dims, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)).replaceAll(',', ', ');
}

function describe(inputs: readonly IOSpec[]): string {
  return inputs.map((i) => `'${i.name}' (${i.type} ${dimsText(i.dims)})`).join(', ');
}
