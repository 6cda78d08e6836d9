/**
 * ONNX Conv as a matrix product (im2col): the attributes resolved against an input shape, and the
 * gather table that turns every output position into a row of kernel-sized input patches.
 */
import { intsAttr, stringAttr, type NodeProto } from './onnx.js';

export interface ConvAttributes {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit pads [begin..., end...], or undefined when auto_pad decides them per input. */
  pads?: number[];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
  group: number;
}

export function convAttributes(node: NodeProto, kernel: number[], group: number): ConvAttributes {
  const k = kernel.length;
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET') as ConvAttributes['autoPad'];
  const pads = intsAttr(node, 'pads');
  return {
    kernel,
    strides: intsAttr(node, 'strides') ?? new Array<number>(k).fill(1),
    dilations: intsAttr(node, 'dilations') ?? new Array<number>(k).fill(1),
    pads: autoPad === 'NOTSET' ? (pads ?? new Array<number>(2 * k).fill(0)) : autoPad === 'VALID' ? new Array<number>(2 * k).fill(0) : undefined,
    autoPad,
    group,
  };
}

export interface ConvGeometry {
  inSpatial: number[];
  outSpatial: number[];
  /** Output positions per image. */
  positions: number;
  /** Kernel positions (product of kernel dims). */
  taps: number;
  /**
   * For output position p and kernel tap t, the flat spatial offset in one input channel, or −1
   * where the kernel hangs over the padding: gather[p·taps + t].
   */
  gather: Int32Array;
}

export function convGeometry(a: ConvAttributes, inSpatial: number[]): ConvGeometry {
  const k = a.kernel.length;
  const pads = a.pads ?? samePads(a, inSpatial);
  const outSpatial = inSpatial.map((size, i) => {
    const span = a.dilations[i]! * (a.kernel[i]! - 1) + 1;
    return Math.floor((size + pads[i]! + pads[i + k]! - span) / a.strides[i]!) + 1;
  });
  if (outSpatial.some((o) => o < 1)) throw new Error(`Conv kernel [${a.kernel.join(', ')}] does not fit input [${inSpatial.join(', ')}]`);
  const positions = outSpatial.reduce((x, y) => x * y, 1);
  const taps = a.kernel.reduce((x, y) => x * y, 1);
  const inStrides = strides(inSpatial);
  const gather = new Int32Array(positions * taps);
  const outIdx = new Array<number>(k).fill(0);
  const tapIdx = new Array<number>(k).fill(0);
  for (let p = 0; p < positions; p++) {
    unravel(p, outSpatial, outIdx);
    for (let t = 0; t < taps; t++) {
      unravel(t, a.kernel, tapIdx);
      let offset = 0;
      for (let d = 0; d < k; d++) {
        const coord = outIdx[d]! * a.strides[d]! - pads[d]! + tapIdx[d]! * a.dilations[d]!;
        if (coord < 0 || coord >= inSpatial[d]!) { offset = -1; break; }
        offset += coord * inStrides[d]!;
      }
      gather[p * taps + t] = offset;
    }
  }
  return { inSpatial, outSpatial, positions, taps, gather };
}

/** SAME_UPPER / SAME_LOWER: output = ceil(input / stride), the odd pad at the end (upper) or start (lower). */
function samePads(a: ConvAttributes, inSpatial: number[]): number[] {
  const k = a.kernel.length;
  const pads = new Array<number>(2 * k).fill(0);
  inSpatial.forEach((size, i) => {
    const out = Math.ceil(size / a.strides[i]!);
    const span = a.dilations[i]! * (a.kernel[i]! - 1) + 1;
    const total = Math.max(0, (out - 1) * a.strides[i]! + span - size);
    const small = Math.floor(total / 2);
    pads[i] = a.autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + k] = total - pads[i]!;
  });
  return pads;
}

function strides(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

function unravel(flat: number, dims: number[], into: number[]): void {
  for (let d = dims.length - 1; d >= 0; d--) {
    into[d] = flat % dims[d]!;
    flat = Math.floor(flat / dims[d]!);
  }
}
