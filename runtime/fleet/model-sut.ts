/**
 * One prepared model as a system under test: queries wait in FIFO order and run one at a time
 * (a device has one accelerator), each query as one batch of its samples. The load generator only
 * sees the completions and their predicted classes.
 */
import type { PreparedModel } from '../backend.js';
import { batchOf, type Dataset } from '../dataset.js';
import { argmaxRows } from '../evaluate.js';
import type { Query, SampleLibrary, SystemUnderTest } from './loadgen.js';

export class ModelSut implements SystemUnderTest {
  readonly #waiting: { query: Query; complete: (p?: readonly number[]) => void }[] = [];
  #running = false;
  /** The first failure; the run is void after it. */
  error?: Error;

  constructor(private readonly model: PreparedModel, private readonly dataset: Dataset) {
    if (model.inputs.length !== 1 || !model.outputs[0]) throw new Error('a benchmark needs a model with one input and at least one output');
  }

  get library(): SampleLibrary {
    return { count: this.dataset.count, label: (i) => this.dataset.labels[i]! };
  }

  issue(query: Query, complete: (predictions?: readonly number[]) => void): void {
    this.#waiting.push({ query, complete });
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    const ds = this.dataset;
    const size = ds.sampleShape[0] * ds.sampleShape[1] * ds.sampleShape[2];
    for (let next = this.#waiting.shift(); next; next = this.#waiting.shift()) {
      const { query, complete } = next;
      const n = query.samples.length;
      const data = new Float32Array(n * size);
      query.samples.forEach((s, i) => batchOf(ds, s, 1, data.subarray(i * size, (i + 1) * size)));
      // A model whose run settles in microtasks would otherwise hold the event loop for the whole
      // scenario: no timer, progress bar or Ctrl-C would get a turn until it ends.
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        const out = await this.model.run({ [this.model.inputs[0]!.name]: { type: 'float32', data, dims: [n, ...ds.sampleShape] } });
        complete(argmaxRows(out[this.model.outputs[0]!.name]!));
      } catch (e) {
        this.error ??= e as Error;
        complete(new Array<number>(n).fill(-1));
      }
    }
    this.#running = false;
  }
}
