/**
 * The self-test: the staged model, placed where the device would serve it (analog tiles with their
 * noise, or digital), runs the bundle's canaries one at a time; its outputs are compared with the
 * expected digital outputs by top-1 agreement and mean cosine (runtime/guard/canary.ts) under the
 * bundle's thresholds. Latency percentiles and the modelled energy per inference come with it.
 */
import { compareOutputs } from '../guard/canary.js';
import { LatencyRecorder, type LatencySummary } from '../latency.js';
import { monotonicClock, type Clock } from '../ports.js';
import type { PlacedModel, ServedBy } from '../scheduler/types.js';
import { DeployError } from './errors.js';
import type { Manifest } from './manifest.js';

export interface SelfTestFigures {
  /** Where the canaries ran ('analog', 'digital'; 'digital-fallback' when the accelerator failed them). */
  servedBy: ServedBy;
  canaries: number;
  agreement: number;
  cosine: number;
  minAgreement: number;
  minCosine: number;
  latency: LatencySummary;
  /** Modelled energy per inference on this placement (J), when the device knows it. */
  energyJ?: number;
}

const floats = (b: Uint8Array): Float32Array => {
  // Parts come from an archive at any byte offset: copy to an aligned buffer.
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
};

/** Runs the canaries; resolves with the figures when they pass, throws a DeployError with them when not. */
export async function selfTest(placed: PlacedModel, m: Manifest, inputsPart: Uint8Array, expectedPart: Uint8Array, o: { energyJ?: number; clock?: Clock } = {}): Promise<SelfTestFigures> {
  const clock = o.clock ?? monotonicClock;
  const inputs = floats(inputsPart);
  const expected = floats(expectedPart);
  const { count, inputShape, outputShape } = m.canary;
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  const outSize = outputShape.reduce((a, b) => a * b, 1);
  if (inputs.length !== count * inSize || expected.length !== count * outSize) {
    throw new DeployError('malformed', `canary parts do not hold ${count} inputs of [${inputShape.join(', ')}] and outputs of [${outputShape.join(', ')}]`);
  }
  const inputName = m.model.inputs[0]!.name;
  const outputName = m.model.outputs[0]!.name;
  const actual = new Float32Array(count * outSize);
  const latency = new LatencyRecorder();
  let servedBy: ServedBy | undefined;
  for (let i = 0; i < count; i++) {
    const t0 = clock.now();
    let run;
    try {
      run = await placed.run({ [inputName]: { type: 'float32', data: inputs.subarray(i * inSize, (i + 1) * inSize), dims: [1, ...inputShape] } });
    } catch (e) {
      throw new DeployError('self-test-failed', `canary ${i} failed to run: ${(e as Error).message}`);
    }
    latency.record(clock.now() - t0);
    const out = run.outputs[outputName];
    if (!out || out.data.length !== outSize) throw new DeployError('self-test-failed', `canary ${i}: output '${outputName}' has ${out?.data.length ?? 0} values, expected ${outSize}`);
    actual.set(out.data as Float32Array, i * outSize);
    // One canary on the fallback path makes the whole test a test of the fallback.
    if (servedBy === undefined || run.backend === 'digital-fallback') servedBy = run.backend;
  }
  const dims = [count, outSize];
  const { agreement, cosine } = compareOutputs({ type: 'float32', data: expected, dims }, { type: 'float32', data: actual, dims });
  const figures: SelfTestFigures = {
    servedBy: servedBy!, canaries: count, agreement, cosine: Number(cosine.toFixed(5)), minAgreement: m.guard.minAgreement, minCosine: m.guard.minCosine,
    latency: latency.summary(), ...(o.energyJ !== undefined ? { energyJ: o.energyJ } : {}),
  };
  if (servedBy === 'digital-fallback') throw new DeployError('self-test-failed', 'the accelerator did not run the canaries (digital fallback)', { ...figures });
  if (agreement < m.guard.minAgreement || cosine < m.guard.minCosine) {
    throw new DeployError('canary-failed', `canaries on ${servedBy}: agreement ${(agreement * 100).toFixed(1)} % (min ${(m.guard.minAgreement * 100).toFixed(1)} %), cosine ${cosine.toFixed(4)} (min ${m.guard.minCosine})`, { ...figures });
  }
  return figures;
}
