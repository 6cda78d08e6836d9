// The floor for cold start and memory: plain Node, onnxruntime-web, one session, N runs, print.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';

const [path, repeat = '1'] = process.argv.slice(2);
ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(readFileSync(path));
const input = new ort.Tensor('float32', new Float32Array(784).fill(0.5), [1, 1, 28, 28]);
let out;
for (let i = 0; i < Number(repeat); i++) out = await session.run({ [session.inputNames[0]]: input });
console.log(JSON.stringify({ logits: Array.from(out[session.outputNames[0]].data), rssMB: process.memoryUsage().rss / 2 ** 20 }));
