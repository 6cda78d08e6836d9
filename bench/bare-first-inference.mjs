// The floor for cold start: plain Node, onnxruntime-web, one session, one run, print.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(readFileSync(process.argv[2]));
const input = new ort.Tensor('float32', new Float32Array(784), [1, 1, 28, 28]);
const out = await session.run({ [session.inputNames[0]]: input });
console.log(JSON.stringify(Array.from(out[session.outputNames[0]].data)));
