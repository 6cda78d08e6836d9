/**
 * A sample source replaying an EDGD evaluation set (models/README.md) as if a sensor produced it:
 * sample k of the stream is image k mod count, so a restarted device that resumes at k replays the
 * same inputs. Fashion-MNIST class names are attached when the set has 10 classes of 1×28×28.
 *
 *   const src = await DatasetSource.open('models/data/fashion-mnist-test-2000.bin');
 *   const s = src.sample(12345);   // { index: 12345, item: 345, label: 2, labelName: 'Pullover', input, shape: [1, 1, 28, 28] }
 */
import { FILE_LIMITS, readFileLimited } from '../storage/read-file.js';
import { batchOf, parseDataset, type Dataset } from '../../runtime/dataset.js';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

export interface Sample {
  /** Position in the stream (0, 1, 2, ...). */
  index: number;
  /** Which item of the data set it is (index mod count). */
  item: number;
  label: number;
  labelName?: string;
  /** float32 NCHW in [0, 1], batch 1. */
  input: Float32Array;
  shape: [number, number, number, number];
}

export class DatasetSource {
  private constructor(readonly path: string, readonly dataset: Dataset, readonly classNames?: readonly string[]) {}

  static async open(path: string): Promise<DatasetSource> {
    const ds = parseDataset(await readFileLimited(path, FILE_LIMITS.binary, 'data set'), path);
    if (ds.count === 0) throw new Error(`${path}: the data set is empty`);
    const [c, h, w] = ds.sampleShape;
    const fashion = c === 1 && h === 28 && w === 28 && ds.labels.every((l) => l < 10);
    return new DatasetSource(path, ds, fashion ? FASHION_MNIST_CLASSES : undefined);
  }

  get count(): number { return this.dataset.count; }

  sample(index: number): Sample {
    const ds = this.dataset;
    const item = index % ds.count;
    const label = ds.labels[item]!;
    return {
      index, item, label, ...(this.classNames ? { labelName: this.classNames[label] } : {}),
      input: batchOf(ds, item, 1), shape: [1, ...ds.sampleShape],
    };
  }
}
