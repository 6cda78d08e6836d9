import { describe, expect, it } from 'vitest';
import { loadModel } from '../runtime/model/load.js';
import { ModelError, type ModelErrorCode } from '../runtime/model/errors.js';
import { onnx } from '../runtime/model/onnx.js';
import { buildModel, buildModelProto, linearReluModel, type BuildModel } from './helpers/onnx-builder.js';

function expectCode(fn: () => unknown, code: ModelErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    expect((e as ModelError).code).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected a ModelError ${code}, but the model loaded`);
}

const base: BuildModel = {
  nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
  initializers: [{ name: 'W', dims: [2, 2], data: [1, 2, 3, 4] }],
  inputs: [{ name: 'x', dims: ['N', 2] }],
  outputs: [{ name: 'y', dims: ['N', 2] }],
};

describe('loadModel', () => {
  it('loads a valid model with its inputs, outputs, opset and constants', () => {
    const m = loadModel(linearReluModel().bytes, { source: 'lin.onnx' });
    expect(m.opset).toBe(17);
    expect(m.inputs).toEqual([{ name: 'x', type: 'float32', dims: ['N', 4] }]);
    expect(m.outputs).toEqual([{ name: 'y', type: 'float32', dims: ['N', 3] }]);
    expect([...m.constants.keys()].sort()).toEqual(['W', 'b']);
  });

  it('treats Constant node outputs as constants', () => {
    const proto = buildModelProto(base);
    proto.graph!.initializer = [];
    proto.graph!.node!.unshift({ opType: 'Constant', output: ['W'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [2, 2], dataType: 1, floatData: [1, 2, 3, 4] } }] });
    const m = loadModel(onnx.ModelProto.encode(proto).finish());
    expect(m.constants.has('W')).toBe(true);
  });

  it('refuses an empty file', () => expectCode(() => loadModel(new Uint8Array()), 'EMPTY'));

  it('refuses random bytes', () => {
    let seed = 42;
    const bytes = Uint8Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    expect(() => loadModel(bytes)).toThrow(ModelError);
  });

  it('refuses a text file', () => {
    expect(() => loadModel(new TextEncoder().encode('hello, this is not an onnx model\n'))).toThrow(ModelError);
  });

  it('refuses every truncation of a valid model', () => {
    const bytes = linearReluModel().bytes;
    for (let n = 1; n < bytes.length; n++) {
      expect(() => loadModel(bytes.subarray(0, n)), `truncated at ${n} of ${bytes.length}`).toThrow(ModelError);
    }
  });

  it('reports a truncated graph as corrupt', () => {
    const bytes = linearReluModel().bytes;
    expectCode(() => loadModel(bytes.subarray(0, Math.floor(bytes.length / 2))), 'CORRUPT', /truncated|not a valid ONNX/);
  });

  it('refuses files over the size limit before decoding', () => {
    expectCode(() => loadModel(linearReluModel().bytes, { maxBytes: 10 }), 'TOO_LARGE', /limit of 10 bytes/);
  });

  it('refuses a model without a graph', () => {
    const bytes = onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }).finish();
    expectCode(() => loadModel(bytes), 'NO_GRAPH');
  });

  it('refuses a missing or unsupported IR version', () => {
    expectCode(() => loadModel(buildModel({ ...base, irVersion: 0 })), 'BAD_IR_VERSION', /IR version missing/);
    expectCode(() => loadModel(buildModel({ ...base, irVersion: 99 })), 'BAD_IR_VERSION', /99/);
  });

  it('refuses unknown opset domains and versions', () => {
    expectCode(() => loadModel(buildModel({ ...base, opset: 0 })), 'UNKNOWN_OPSET', /version 0/);
    expectCode(() => loadModel(buildModel({ ...base, opset: 99 })), 'UNKNOWN_OPSET', /version 99/);
    expectCode(() => loadModel(buildModel({ ...base, opsetImports: [{ domain: '', version: 17 }, { domain: 'com.example', version: 1 }] })), 'UNKNOWN_OPSET', /com\.example/);
    expectCode(() => loadModel(buildModel({ ...base, opsetImports: [] })), 'UNKNOWN_OPSET', /no operator set/);
    const foreignNode = { ...base, nodes: [{ ...base.nodes[0]!, domain: 'ai.onnx.ml' }] };
    expectCode(() => loadModel(buildModel(foreignNode)), 'UNKNOWN_OPSET', /does not import/);
  });

  it('refuses graphs without inputs or outputs', () => {
    expectCode(() => loadModel(buildModel({ ...base, inputs: [] })), 'NO_INPUTS');
    expectCode(() => loadModel(buildModel({ ...base, outputs: [] })), 'NO_OUTPUTS');
  });

  it('names the node and value when an initializer is missing', () => {
    expectCode(() => loadModel(buildModel({ ...base, initializers: [] })), 'MISSING_INPUT', /MatMul.*reads 'W'/);
  });

  it('refuses a graph output that no node produces', () => {
    expectCode(() => loadModel(buildModel({ ...base, outputs: [{ name: 'nowhere', dims: [1] }] })), 'DANGLING_OUTPUT', /nowhere/);
  });

  it('refuses duplicate initializers', () => {
    const dup = { ...base, initializers: [...base.initializers!, ...base.initializers!] };
    expectCode(() => loadModel(buildModel(dup)), 'DUPLICATE_NAME', /'W'/);
  });

  it('refuses a tensor whose data does not match its dims', () => {
    expectCode(() => loadModel(buildModel({ ...base, initializers: [{ name: 'W', dims: [2, 3], data: [1, 2, 3, 4] }] })), 'BAD_TENSOR', /16 bytes of raw data.*need 24/);
  });

  it('refuses absurd tensor sizes', () => {
    const proto = buildModelProto(base);
    proto.graph!.initializer![0]!.dims = [1_000_000, 1_000_000];
    proto.graph!.initializer![0]!.rawData = new Uint8Array(0);
    expectCode(() => loadModel(onnx.ModelProto.encode(proto).finish()), 'TOO_LARGE', /elements/);
  });

  it('refuses external weight files', () => {
    const proto = buildModelProto(base);
    proto.graph!.initializer![0]!.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    expectCode(() => loadModel(onnx.ModelProto.encode(proto).finish()), 'EXTERNAL_DATA');
  });

  it('refuses non-tensor inputs and negative dims', () => {
    const proto = buildModelProto(base);
    proto.graph!.input![0]!.type = { sequenceType: {} };
    expectCode(() => loadModel(onnx.ModelProto.encode(proto).finish()), 'BAD_INPUT', /not a tensor/);
    expectCode(() => loadModel(buildModel({ ...base, inputs: [{ name: 'x', dims: [-3, 2] }] })), 'BAD_INPUT', /negative/);
  });
});
