// Runs N inferences through the edgerun digital backend and prints the process RSS in MB.
import { readFile } from 'node:fs/promises';
import { loadModel } from '../runtime/model/load.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';

const [path = 'models/mlp.onnx', count = '1000'] = process.argv.slice(2);
const backend = new DigitalBackend();
const prepared = await backend.load(loadModel(await readFile(path), { source: path }));
const data = new Float32Array(784).fill(0.5);
for (let i = 0; i < Number(count); i++) await prepared.run({ input: { type: 'float32', data, dims: [1, 1, 28, 28] } });
console.log(JSON.stringify({ inferences: Number(count), rssMB: process.memoryUsage().rss / 2 ** 20 }));
