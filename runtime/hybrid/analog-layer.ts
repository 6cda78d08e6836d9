/**
 * Runs one analog layer: reshapes activations into MVM batches (im2col for Conv), runs them on the
 * layer's AnalogMatrix (one per conv group), and applies what the array does not — Gemm's
 * alpha/beta/C and Conv bias, then the fused periphery (folded BatchNormalization, activations,
 * pooling) — digitally, writing the ONNX output layout.
 */
import { halvingMaxPool, poolGeometry, type Activation, type PeripheryLayer, type PoolGeometry } from './periphery-plan.js';
import { applyActivations, scaleColumns } from './periphery.js';
import { convGeometry, type ConvGeometry } from '../model/conv-geometry.js';
import type { AnalogMatrix } from '../analog/analog-matrix.js';
import type { TensorData } from '../model/tensor.js';
import { ConvKernels } from './conv-kernels.js';

export class AnalogLayerRunner {
  /** Per input spatial shape. */
  readonly #im2col = new Map<string, Im2col>();
  /** Conv layers only: im2col and its inverse, and where their data lives for the current shape. */
  #kernels: ConvKernels | null = null;
  #at: ConvRegions | null = null;
  /** Conv layers: a leading Relu or Clip is applied as toChannels' clamp, the other activations after it. */
  readonly #clamp: [number, number] = [-Infinity, Infinity];
  readonly #activations: readonly Activation[];
  /** The output buffer a run with `reuse` writes (and the next such run overwrites). */
  #reused = new Float32Array(0);

  constructor(readonly layer: PeripheryLayer, readonly matrices: AnalogMatrix[]) {
    const activations = layer.periphery?.activations ?? [];
    const first = layer.kind === 'conv' ? activations[0] : undefined;
    if (first?.op === 'Relu') this.#clamp = [0, Infinity];
    else if (first?.op === 'Clip') this.#clamp = [first.min, first.max];
    this.#activations = this.#clamp[0] === -Infinity && this.#clamp[1] === Infinity ? activations : activations.slice(1);
  }

  /**
   * The layer's output for `x`: in a new array, or with `reuse` in this runner's own buffer, valid
   * until its next run with `reuse` (for a value that lives only within one inference). Not itself
   * async: the layer's promise is returned as it is (an async wrapper would add microtask turns).
   */
  run(x: TensorData, reuse = false): Promise<TensorData> {
    if (x.type !== 'float32') return Promise.reject(new Error(`${this.layer.name}: analog layers take float32 activations, got ${x.type}`));
    switch (this.layer.kind) {
      case 'matmul': return this.#matmul(x, reuse);
      case 'gemm': return this.#gemm(x, reuse);
      case 'conv': return this.#conv(x, reuse);
    }
  }

  /** `rows` input vectors through group g's matrix; an empty tensor (a dim of 0) has none to send. */
  #mvm(g: number, x: Float32Array, rows: number): Promise<Float32Array> {
    return rows === 0 ? Promise.resolve(new Float32Array(0)) : this.matrices[g]!.run(x, rows);
  }

  /** `values` copied out of the kernels' memory into the output (#output). */
  #copy(values: Float32Array, reuse: boolean): Float32Array {
    const y = this.#output(values.length, reuse);
    y.set(values);
    return y;
  }

  /** `size` floats for the output: a new array, or with `reuse` this runner's buffer. */
  #output(size: number, reuse: boolean): Float32Array {
    if (!reuse) return new Float32Array(size);
    if (this.#reused.length !== size) this.#reused = new Float32Array(size);
    return this.#reused;
  }

  /** [..., K] · [K, N] → [..., N]; leading dims are the MVM batch. */
  async #matmul(x: TensorData, reuse: boolean): Promise<TensorData> {
    const { k, n } = this.layer;
    const dims = x.dims;
    if (dims[dims.length - 1] !== k) throw new Error(`${this.layer.name}: MatMul needs a last dim of ${k}, got [${dims.join(', ')}]`);
    const batch = x.data.length / k;
    const product = await this.#mvm(0, x.data as Float32Array, batch);
    const y = this.#output(batch * n, reuse);
    y.set(product);
    this.#rowPeriphery(y, batch);
    return { type: 'float32', data: y, dims: dims.length === 1 ? [n] : [...dims.slice(0, -1), n] };
  }

  /** Y = alpha·A'·B' + beta·C with C broadcast to [M, N]. */
  async #gemm(x: TensorData, reuse: boolean): Promise<TensorData> {
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
    const product = await this.#mvm(0, a, m);
    const { alpha, beta, c } = gemm!;
    const y = this.#output(m * n, reuse);
    y.set(product.subarray(0, m * n));
    if (alpha !== 1) for (let i = 0; i < y.length; i++) y[i] = y[i]! * alpha;
    if (c && beta !== 0) addBroadcast(y, m, n, c, beta);
    this.#rowPeriphery(y, m);
    return { type: 'float32', data: y, dims: [m, n] };
  }

  /** A Gemm/MatMul output's periphery: the folded BatchNormalization per column, then activations. */
  #rowPeriphery(y: Float32Array, rows: number): void {
    const chain = this.layer.periphery;
    if (!chain) return;
    if (chain.affine) scaleColumns(y, 0, rows, this.layer.n, chain.affine.scale, 0, chain.affine.shift);
    applyActivations(y, 0, y.length, chain.activations);
  }

  /** X [N, C, ...spatial] → Y [N, M, ...outSpatial] through im2col patches per group. */
  async #conv(x: TensorData, reuse: boolean): Promise<TensorData> {
    const { conv } = this.layer;
    const { attributes, inChannels, outChannels } = conv!;
    const [batch = 0, channels = 0, ...spatial] = x.dims;
    if (channels !== inChannels || spatial.length !== attributes.kernel.length) {
      throw new Error(`${this.layer.name}: Conv needs [N, ${inChannels}, ${attributes.kernel.map(() => '·').join(', ')}], got [${x.dims.join(', ')}]`);
    }
    const key = spatial.join(',');
    let im2col = this.#im2col.get(key);
    if (!im2col) this.#im2col.set(key, (im2col = this.#im2colFor(spatial)));
    const { geometry: { positions, outSpatial }, groupSize } = im2col;
    const at = this.#regions(im2col, batch);
    const kernels = this.#kernels!;
    const { f32 } = kernels;
    const mPerGroup = this.layer.n;
    const perImage = positions * this.layer.k;
    const rows = batch * positions;
    const src = x.data as Float32Array;
    const affine = this.layer.periphery?.affine;
    const [lo, hi] = this.#clamp;
    for (let g = 0; g < attributes.group; g++) {
      for (let b = 0; b < batch; b++) {
        // patches[b·P + p, c·taps + t] = X[b, g·C/group + c, gather[p, t]], 0 in the padding
        const from = (b * attributes.group + g) * groupSize;
        f32.set(src.subarray(from, from + groupSize), at.source >> 2);
        kernels.gather(at.source, at.offsets, perImage, at.patches + 4 * b * perImage);
      }
      f32.set(await this.#mvm(g, f32.subarray(at.patches >> 2, (at.patches >> 2) + rows * this.layer.k), rows), at.y >> 2);
      // A folded BatchNormalization scales the columns here; its shift is part of the bias below.
      if (affine) scaleColumns(f32, at.y >> 2, rows, mPerGroup, affine.scale, g * mPerGroup, null);
      for (let b = 0; b < batch; b++) {
        kernels.toChannels(at.y + 4 * b * positions * mPerGroup, positions, mPerGroup, at.bias + 4 * g * mPerGroup, at.out + 4 * (b * outChannels + g * mPerGroup) * positions, lo, hi);
      }
    }
    const out = at.out >> 2;
    const size = batch * outChannels * positions;
    if (this.#activations.length) applyActivations(f32, out, out + size, this.#activations);
    const pool = im2col.pool;
    if (!pool) return { type: 'float32', data: this.#copy(f32.subarray(out, out + size), reuse), dims: [batch, outChannels, ...outSpatial] };
    const planes = batch * outChannels;
    if (im2col.halving) kernels.maxPool2x2(at.out, planes, 4 * positions, 4 * outSpatial[1]!, pool.outSpatial[0]!, pool.outSpatial[1]!, at.pooled);
    else if (this.layer.periphery!.pool!.op === 'MaxPool') kernels.maxPool(at.out, planes, 4 * positions, pool.positions, at.poolStarts, at.poolOffsets, at.pooled);
    else kernels.averagePool(at.out, planes, 4 * positions, pool.positions, at.poolStarts, at.poolGroups, at.poolOffsets, at.poolTerms, at.poolDivisors, at.pooled);
    const pooled = at.pooled >> 2;
    return { type: 'float32', data: this.#copy(f32.subarray(pooled, pooled + planes * pool.positions), reuse), dims: [batch, outChannels, ...pool.outSpatial] };
  }

  /** im2col's offsets for inputs of `spatial`, and the fused pool's windows over the Conv's output. */
  #im2colFor(spatial: number[]): Im2col {
    const { attributes, inChannels } = this.layer.conv!;
    const im2col = patchOffsets(convGeometry(attributes, spatial), inChannels / attributes.group);
    const stage = this.layer.periphery?.pool;
    if (!stage) return im2col;
    const pool = poolGeometry(stage, im2col.geometry.outSpatial);
    if (typeof pool === 'string') throw new Error(`${this.layer.name}: ${stage.op} after it on [${im2col.geometry.outSpatial.join(', ')}]: ${pool}`);
    return { ...im2col, pool, halving: halvingMaxPool(stage, im2col.geometry.outSpatial, pool.outSpatial) };
  }

  /** Byte addresses in the conv kernels' memory for a run over `batch` images; laid out again when the shape changes. */
  #regions(im2col: Im2col, batch: number): ConvRegions {
    if (this.#at?.im2col === im2col && this.#at.batch === batch) return this.#at;
    const kernels = (this.#kernels ??= new ConvKernels());
    const { conv, k, n: mPerGroup, bias } = this.layer;
    const outChannels = conv!.outChannels;
    const positions = im2col.geometry.positions;
    const pool = im2col.pool;
    const sizes = { offsets: im2col.offsets.length, bias: outChannels, source: im2col.groupSize + 1, patches: batch * positions * k, y: batch * positions * mPerGroup, out: batch * outChannels * positions };
    let end = 0;
    const region = (floats: number): number => { const a = end; end += 4 * floats; return a; };
    const at: ConvRegions = {
      im2col, batch, offsets: region(sizes.offsets), bias: region(sizes.bias), source: region(sizes.source), patches: region(sizes.patches), y: region(sizes.y), out: region(sizes.out),
      poolStarts: region(pool ? pool.starts.length : 0), poolGroups: region(pool ? pool.groups.length : 0), poolOffsets: region(pool ? pool.offsets.length : 0),
      poolTerms: region(pool ? pool.positions : 0), poolDivisors: region(pool ? pool.positions : 0),
      pooled: region(pool ? batch * outChannels * pool.positions : 0),
    };
    kernels.reserve(end);
    kernels.i32.set(im2col.offsets, at.offsets >> 2);
    if (pool) {
      // maxPool takes each window's offsets whole (starts into offsets), averagePool its groups in order.
      if (this.layer.periphery!.pool!.op === 'MaxPool') kernels.i32.set(pool.starts.map((g) => pool.groups[g]!), at.poolStarts >> 2);
      else kernels.i32.set(pool.starts, at.poolStarts >> 2);
      kernels.i32.set(pool.groups, at.poolGroups >> 2);
      for (let t = 0, i = at.poolOffsets >> 2; t < pool.offsets.length; t++, i++) kernels.i32[i] = 4 * pool.offsets[t]!; // bytes
      kernels.f32.set(pool.terms, at.poolTerms >> 2);
      kernels.f32.set(pool.divisors, at.poolDivisors >> 2);
    }
    kernels.f32.fill(0, at.bias >> 2, (at.bias >> 2) + outChannels);
    if (bias) kernels.f32.set(bias.subarray(0, outChannels), at.bias >> 2);
    const affine = this.layer.periphery?.affine;
    // A folded BatchNormalization: (y + b)·scale + shift = y·scale + (b·scale + shift).
    if (affine) for (let c = 0, i = at.bias >> 2; c < outChannels; c++, i++) kernels.f32[i] = kernels.f32[i]! * affine.scale[c]! + affine.shift[c]!;
    kernels.f32[(at.source >> 2) + im2col.groupSize] = 0; // the zero that padding reads
    this.#at = at;
    return at;
  }
}

interface ConvRegions {
  im2col: Im2col;
  batch: number;
  /** im2col's byte offsets, the bias per output channel, one image's channels of one group (and a zero), patches, tile outputs, the output. */
  offsets: number;
  bias: number;
  source: number;
  patches: number;
  y: number;
  out: number;
  /** The fused pool's windows (PoolGeometry: starts, groups, byte offsets, terms, divisors) and its output; empty without a pool. */
  poolStarts: number;
  poolGroups: number;
  poolOffsets: number;
  poolTerms: number;
  poolDivisors: number;
  pooled: number;
}

interface Im2col {
  geometry: ConvGeometry;
  /** Per patch element (p, c·taps + t): the byte offset of its input in one group's input channels, or of the zero after them. */
  offsets: Int32Array;
  /** Input elements of one image in one group: channels per group × spatial size. */
  groupSize: number;
  /** The fused pool's windows over one output channel. */
  pool?: PoolGeometry;
  /** The pool is a MaxPool of whole 2×2 windows at stride 2: maxPool2x2 takes it, four outputs at a time. */
  halving?: boolean;
}

function patchOffsets(geometry: ConvGeometry, perGroup: number): Im2col {
  const { positions, taps, gather, inSpatial } = geometry;
  const inSize = inSpatial.reduce((p, d) => p * d, 1);
  const groupSize = perGroup * inSize;
  const offsets = new Int32Array(positions * perGroup * taps);
  for (let p = 0, i = 0; p < positions; p++) {
    for (let c = 0; c < perGroup; c++) {
      for (let t = 0; t < taps; t++, i++) {
        const off = gather[p * taps + t]!;
        offsets[i] = 4 * (off < 0 ? groupSize : c * inSize + off);
      }
    }
  }
  return { geometry, offsets, groupSize };
}

/** y[M, N] += beta · C, C unidirectionally broadcast (scalar, [N], [1, N], [M, 1] or [M, N]). */
function addBroadcast(y: Float32Array, m: number, n: number, c: TensorData, beta: number): void {
  const data = c.data as Float32Array;
  const dims = c.dims.length === 1 ? [1, c.dims[0]!] : c.dims.length === 0 ? [1, 1] : [c.dims[0]!, c.dims[1]!];
  const [cm, cn] = dims as [number, number];
  if ((cm !== 1 && cm !== m) || (cn !== 1 && cn !== n)) throw new Error(`Gemm bias of shape [${c.dims.join(', ')}] does not broadcast to [${m}, ${n}]`);
  for (let i = 0; i < m; i++) {
    const row = (cm === 1 ? 0 : i) * cn;
    const o = i * n;
    // A bias per output (the usual case) walks C; a per-row or scalar C repeats one value.
    if (cn === n) for (let j = 0; j < n; j++) y[o + j] = y[o + j]! + beta * data[row + j]!;
    else for (let j = 0; j < n; j++) y[o + j] = y[o + j]! + beta * data[row]!;
  }
}
