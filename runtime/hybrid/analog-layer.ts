/**
 * Runs one analog layer: reshapes activations into MVM batches (im2col for Conv), runs them on the
 * layer's AnalogMatrix (one per conv group), and applies what the array does not — Gemm's
 * alpha/beta/C and Conv bias — digitally, writing the ONNX output layout.
 */
import type { AnalogLayer } from '../model/partition.js';
import { convGeometry, type ConvGeometry } from '../model/conv-geometry.js';
import type { AnalogMatrix } from '../analog/analog-matrix.js';
import type { TensorData } from '../model/tensor.js';

export class AnalogLayerRunner {
  /** Per input spatial shape. */
  readonly #im2col = new Map<string, Im2col>();
  #patches = new Float32Array(0);
  /** One image's input channels of one group, and a zero at the end for the padding. */
  #source = new Float32Array(0);

  constructor(readonly layer: AnalogLayer, readonly matrices: AnalogMatrix[]) {}

  async run(x: TensorData): Promise<TensorData> {
    if (x.type !== 'float32') throw new Error(`${this.layer.name}: analog layers take float32 activations, got ${x.type}`);
    switch (this.layer.kind) {
      case 'matmul': return this.#matmul(x);
      case 'gemm': return this.#gemm(x);
      case 'conv': return this.#conv(x);
    }
  }

  /** [..., K] · [K, N] → [..., N]; leading dims are the MVM batch. */
  async #matmul(x: TensorData): Promise<TensorData> {
    const { k, n } = this.layer;
    const dims = x.dims;
    if (dims[dims.length - 1] !== k) throw new Error(`${this.layer.name}: MatMul needs a last dim of ${k}, got [${dims.join(', ')}]`);
    const batch = x.data.length / k;
    const y = (await this.matrices[0]!.run(x.data as Float32Array, batch)).slice();
    return { type: 'float32', data: y, dims: dims.length === 1 ? [n] : [...dims.slice(0, -1), n] };
  }

  /** Y = alpha·A'·B' + beta·C with C broadcast to [M, N]. */
  async #gemm(x: TensorData): Promise<TensorData> {
    const { k, n, gemm } = this.layer;
    if (x.dims.length !== 2) throw new Error(`${this.layer.name}: Gemm needs a 2-D input, got [${x.dims.join(', ')}]`);
    let a = x.data as Float32Array;
    let m = x.dims[0]!;
    if (gemm!.transA) {
      m = x.dims[1]!;
      a = new Float32Array(m * k);
      const src = x.data as Float32Array;
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) a[i * k + j] = src[j * m + i]!;
    }
    if (a.length !== m * k) throw new Error(`${this.layer.name}: Gemm needs ${k} inputs per row, got [${x.dims.join(', ')}]`);
    const y = (await this.matrices[0]!.run(a, m)).slice();
    const { alpha, beta, c } = gemm!;
    if (alpha !== 1) for (let i = 0; i < y.length; i++) y[i] = y[i]! * alpha;
    if (c && beta !== 0) addBroadcast(y, m, n, c, beta);
    return { type: 'float32', data: y, dims: [m, n] };
  }

  /** X [N, C, ...spatial] → Y [N, M, ...outSpatial] through im2col patches per group. */
  async #conv(x: TensorData): Promise<TensorData> {
    const { conv, k, n: mPerGroup, bias } = this.layer;
    const { attributes, inChannels, outChannels } = conv!;
    const [batch = 0, channels = 0, ...spatial] = x.dims;
    if (channels !== inChannels || spatial.length !== attributes.kernel.length) {
      throw new Error(`${this.layer.name}: Conv needs [N, ${inChannels}, ${attributes.kernel.map(() => '·').join(', ')}], got [${x.dims.join(', ')}]`);
    }
    const key = spatial.join(',');
    let im2col = this.#im2col.get(key);
    if (!im2col) this.#im2col.set(key, (im2col = patchIndex(convGeometry(attributes, spatial), inChannels / attributes.group)));
    const { geometry: { positions, outSpatial }, index, groupSize } = im2col;
    const rows = batch * positions;
    const perImage = positions * k;
    if (this.#patches.length < rows * k) this.#patches = new Float32Array(rows * k);
    if (this.#source.length < groupSize + 1) this.#source = new Float32Array(groupSize + 1); // + the zero that padding reads
    const patches = this.#patches;
    const source = this.#source;
    const src = x.data as Float32Array;
    const out = new Float32Array(batch * outChannels * positions);
    for (let g = 0; g < attributes.group; g++) {
      for (let b = 0; b < batch; b++) {
        // patches[b·P + p, c·taps + t] = X[b, g·C/group + c, gather[p, t]], 0 in the padding
        const from = (b * attributes.group + g) * groupSize;
        source.set(src.subarray(from, from + groupSize));
        source[groupSize] = 0;
        for (let i = 0, at = b * perImage; i < perImage; i++) patches[at + i] = source[index[i]!]!;
      }
      const y = await this.matrices[g]!.run(patches, rows);
      for (let b = 0; b < batch; b++) {
        for (let m = 0; m < mPerGroup; m++) {
          const ch = g * mPerGroup + m;
          const beta = bias ? bias[ch]! : 0;
          const dst = (b * outChannels + ch) * positions;
          for (let p = 0, at = b * positions * mPerGroup + m; p < positions; p++, at += mPerGroup) out[dst + p] = y[at]! + beta;
        }
      }
    }
    return { type: 'float32', data: out, dims: [batch, outChannels, ...outSpatial] };
  }
}

interface Im2col {
  geometry: ConvGeometry;
  /** Per patch element (p, c·taps + t): its index in one group's input channels, or groupSize (a zero). */
  index: Int32Array;
  /** Input elements of one image in one group: channels per group × spatial size. */
  groupSize: number;
}

function patchIndex(geometry: ConvGeometry, perGroup: number): Im2col {
  const { positions, taps, gather, inSpatial } = geometry;
  const inSize = inSpatial.reduce((p, d) => p * d, 1);
  const groupSize = perGroup * inSize;
  const index = new Int32Array(positions * perGroup * taps);
  for (let p = 0, i = 0; p < positions; p++) {
    for (let c = 0; c < perGroup; c++) {
      for (let t = 0; t < taps; t++, i++) {
        const off = gather[p * taps + t]!;
        index[i] = off < 0 ? groupSize : c * inSize + off;
      }
    }
  }
  return { geometry, index, groupSize };
}

/** y[M, N] += beta · C, C unidirectionally broadcast (scalar, [N], [1, N], [M, 1] or [M, N]). */
function addBroadcast(y: Float32Array, m: number, n: number, c: TensorData, beta: number): void {
  const data = c.data as Float32Array;
  const dims = c.dims.length === 1 ? [1, c.dims[0]!] : c.dims.length === 0 ? [1, 1] : [c.dims[0]!, c.dims[1]!];
  const [cm, cn] = dims as [number, number];
  if ((cm !== 1 && cm !== m) || (cn !== 1 && cn !== n)) throw new Error(`Gemm bias of shape [${c.dims.join(', ')}] does not broadcast to [${m}, ${n}]`);
  for (let i = 0; i < m; i++) {
    const ci = cm === 1 ? 0 : i;
    for (let j = 0; j < n; j++) y[i * n + j] = y[i * n + j]! + beta * data[ci * cn + (cn === 1 ? 0 : j)]!;
  }
}
