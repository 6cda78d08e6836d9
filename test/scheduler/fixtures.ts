/** Real models and real inputs for the scheduler, remote and guard tests. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import { batchOf, parseDataset, type Dataset } from '../../runtime/dataset.js';
import type { Feeds } from '../../runtime/model/feeds.js';
import type { TensorData } from '../../runtime/model/tensor.js';

export const repoPath = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));

export function fixtureModel(name: 'mlp' | 'cnn'): LoadedModel {
  return loadModel(readFileSync(repoPath(`models/${name}.onnx`)), { source: `${name}.onnx` });
}

export const canary: Dataset = parseDataset(readFileSync(repoPath('models/data/canary-64.bin')), 'canary-64.bin');

/** Canary images [i, i+n) as the models' `input` feed. */
export function imageFeeds(i: number, n = 1): Feeds {
  return { input: { type: 'float32', data: batchOf(canary, i % canary.count, n), dims: [n, 1, 28, 28] } };
}

export function values(t: TensorData | undefined): number[] {
  return Array.from((t?.data ?? []) as Float32Array);
}
