/**
 * Making a bundle from a model: the canary inputs (the first samples of a data set) are run on the
 * digital reference (onnxruntime) here, at build time, and their outputs become the expected
 * outputs the device compares its own placement against.
 */
import semver from 'semver';
import type { Backend } from '../backend.js';
import { batchOf, type Dataset } from '../dataset.js';
import type { LoadedModel } from '../model/load.js';
import { packBundle } from './bundle.js';
import { BUNDLE_FORMAT, CANARY_EXPECTED_PART, CANARY_INPUTS_PART, encodeManifest, MODEL_PART, sha256Hex, type ManifestInput } from './manifest.js';

export interface BuildOptions {
  id: string;
  version: string;
  model: LoadedModel;
  /** Digital backend that computes the expected outputs. */
  digital: Backend;
  canary: Dataset;
  canaryCount: number;
  labels?: string[];
  profiles?: string[];
  minRuntime: string;
  minAgreement: number;
  minCosine: number;
  created?: Date;
}

const bytesOf = (f: Float32Array): Uint8Array => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

/** The unsigned bundle archive. */
export async function buildBundle(o: BuildOptions): Promise<Uint8Array> {
  if (semver.valid(o.version) !== o.version) throw new Error(`--version ${o.version}: not a semantic version such as 1.2.0`);
  const input = o.model.inputs[0]!;
  if (o.model.inputs.length !== 1) throw new Error(`canaries feed one input, the model has ${o.model.inputs.length} (${o.model.inputs.map((i) => i.name).join(', ')})`);
  if (input.type !== 'float32') throw new Error(`canaries are float32 images; the model's input '${input.name}' is ${input.type}`);
  const count = Math.min(o.canaryCount, o.canary.count);
  const sampleShape = [...o.canary.sampleShape];
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const inputs = batchOf(o.canary, 0, count);
  const prepared = await o.digital.load(o.model);
  let expected: Float32Array | undefined;
  let outputShape: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const outs = await prepared.run({ [input.name]: { type: 'float32', data: inputs.subarray(i * size, (i + 1) * size), dims: [1, ...sampleShape] } });
      const out = outs[o.model.outputs[0]!.name]!;
      if (out.type !== 'float32') throw new Error(`the model's first output is ${out.type}; canary outputs must be float32`);
      if (!expected) {
        outputShape = out.dims.slice(1);
        expected = new Float32Array(count * out.data.length);
      }
      expected.set(out.data as Float32Array, i * out.data.length);
    }
  } finally {
    await prepared.dispose();
  }
  const parts = { [MODEL_PART]: o.model.bytes, [CANARY_INPUTS_PART]: bytesOf(inputs), [CANARY_EXPECTED_PART]: bytesOf(expected!) };
  const part = (b: Uint8Array) => ({ sha256: sha256Hex(b), size: b.byteLength });
  const manifest: ManifestInput = {
    format: BUNDLE_FORMAT,
    model: { id: o.id, version: o.version, inputs: o.model.inputs, outputs: o.model.outputs },
    labels: o.labels ?? [],
    profiles: o.profiles ?? [],
    minRuntime: o.minRuntime,
    guard: { minAgreement: o.minAgreement, minCosine: o.minCosine },
    canary: { count, inputShape: sampleShape, outputShape: outputShape.length ? outputShape : [1] },
    parts: { [MODEL_PART]: part(parts[MODEL_PART]), [CANARY_INPUTS_PART]: part(parts[CANARY_INPUTS_PART]), [CANARY_EXPECTED_PART]: part(parts[CANARY_EXPECTED_PART]) },
    created: (o.created ?? new Date()).toISOString(),
  };
  return packBundle({ manifestBytes: encodeManifest(manifest), parts });
}
