/**
 * Micro-batching along axis 0: requests of one model are concatenated into a single batch and the
 * outputs split back by each request's leading dimension. Small sensor inferences are dominated
 * by per-call overhead, so one call of N rows costs far less than N calls of one row.
 */
import type { Feeds } from '../model/feeds.js';
import type { TensorData, TypedArray } from '../model/tensor.js';

/** Why these feeds cannot be stacked (different shapes, strings, scalars), or undefined if they can. */
export function unbatchable(all: readonly Feeds[]): string | undefined {
  const first = all[0];
  if (!first) return 'no requests';
  for (const [name, t] of Object.entries(first)) {
    if (t.dims.length === 0) return `input '${name}' is a scalar`;
    if (Array.isArray(t.data)) return `input '${name}' holds strings`;
    const rest = t.dims.slice(1).join(',');
    for (const f of all) {
      const u = f[name];
      if (!u || u.type !== t.type || u.dims.slice(1).join(',') !== rest || u.dims.length !== t.dims.length) return `input '${name}' differs in type or trailing dims`;
      if (u.data.constructor !== t.data.constructor) return `input '${name}' mixes array types`;
    }
  }
  return undefined;
}

/** Stacks every input along axis 0. */
export function concatFeeds(all: readonly Feeds[]): Feeds {
  const out: Feeds = {};
  for (const [name, t] of Object.entries(all[0]!)) {
    const parts = all.map((f) => f[name]!);
    const total = parts.reduce((a, p) => a + p.data.length, 0);
    const Ctor = t.data.constructor as new (n: number) => TypedArray;
    const data = new Ctor(total);
    let off = 0;
    for (const p of parts) { (data as Float32Array).set(p.data as Float32Array, off); off += p.data.length; }
    out[name] = { type: t.type, data, dims: [parts.reduce((a, p) => a + p.dims[0]!, 0), ...t.dims.slice(1)] };
  }
  return out;
}

/** Splits batched outputs back per request, by each request's leading dim; throws if an output has no batch axis. */
export function splitOutputs(outputs: Record<string, TensorData>, rows: readonly number[]): Record<string, TensorData>[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const per: Record<string, TensorData>[] = rows.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== total || Array.isArray(t.data)) throw new Error(`output '${name}' of shape [${t.dims.join(', ')}] has no batch axis of ${total}`);
    const stride = total ? t.data.length / total : 0;
    let row = 0;
    rows.forEach((n, i) => {
      const data = (t.data as TypedArray).slice(row * stride, (row + n) * stride);
      per[i]![name] = { type: t.type, data, dims: [n, ...t.dims.slice(1)] };
      row += n;
    });
  }
  return per;
}
