/** Checks inference inputs against a model's declared inputs, with errors a user can act on. */
import { ModelError } from './errors.js';
import type { IOSpec } from './load.js';
import { elementCount, type TensorData } from './tensor.js';

export type Feeds = Record<string, TensorData>;

export function validateFeeds(inputs: readonly IOSpec[], feeds: Feeds, source = 'model'): void {
  const expected = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(feeds)) {
    if (!expected.has(name)) {
      throw new ModelError('BAD_INPUT', `${source}: unknown input '${name}'; the model's inputs are ${describe(inputs)}`);
    }
  }
  for (const spec of inputs) {
    const t = feeds[spec.name];
    if (!t) throw new ModelError('BAD_INPUT', `${source}: missing input '${spec.name}' (${spec.type} ${dimsText(spec.dims)})`);
    if (t.type !== spec.type) {
      throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must be ${spec.type}, got ${t.type}`);
    }
    if (spec.anyRank) {
      // Only the type and the payload length can be checked.
    } else if (t.dims.length !== spec.dims.length) {
      throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must have shape ${dimsText(spec.dims)} (rank ${spec.dims.length}), got [${t.dims.join(', ')}]`);
    }
    if (!spec.anyRank) spec.dims.forEach((want, axis) => {
      const got = t.dims[axis] ?? -1;
      if (!Number.isInteger(got) || got < 0 || (typeof want === 'number' && got !== want)) {
        throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' must have shape ${dimsText(spec.dims)}, got [${t.dims.join(', ')}] (axis ${axis})`);
      }
    });
    if (t.data.length !== elementCount(t.dims)) {
      throw new ModelError('BAD_INPUT', `${source}: input '${spec.name}' has ${t.data.length} values but shape [${t.dims.join(', ')}] needs ${elementCount(t.dims)}`);
    }
  }
}

export function dimsText(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}

function describe(inputs: readonly IOSpec[]): string {
  return inputs.map((i) => `'${i.name}' (${i.type} ${dimsText(i.dims)})`).join(', ');
}
