/**
 * The digital periphery's JS kernels (what periphery-plan.ts fused), applied in place to an analog
 * layer's output: the folded BatchNormalization's per-channel scale and shift, and elementwise
 * activations in float32 as onnxruntime computes them. Each is one tight loop over a typed array
 * with the operator chosen outside it, allocating nothing. A Conv layer's leading Relu/Clip and its
 * pooling run in WebAssembly with its layout kernels (conv-kernels.ts).
 */
import type { Activation } from './periphery-plan.js';

const f = Math.fround;

/** y[from … to) through each activation in turn, in place. */
export function applyActivations(y: Float32Array, from: number, to: number, activations: readonly Activation[]): void {
  for (const a of activations) {
    switch (a.op) {
      case 'Relu':
        for (let i = from; i < to; i++) if (y[i]! < 0) y[i] = 0;
        break;
      case 'LeakyRelu': {
        const alpha = a.alpha;
        for (let i = from; i < to; i++) { const v = y[i]!; if (v < 0) y[i] = alpha * v; }
        break;
      }
      case 'Clip': {
        const { min, max } = a;
        // max(v, min), then min(·, max), as onnxruntime: a min above max gives max everywhere.
        for (let i = from; i < to; i++) { const v = y[i]! < min ? min : y[i]!; y[i] = v > max ? max : v; }
        break;
      }
      case 'HardSigmoid': {
        const alpha = f(a.alpha), beta = f(a.beta);
        for (let i = from; i < to; i++) { const v = f(f(alpha * y[i]!) + beta); y[i] = v < 0 ? 0 : v > 1 ? 1 : v; }
        break;
      }
      case 'HardSwish': {
        const sixth = f(1 / 6);
        for (let i = from; i < to; i++) { const x = y[i]!; const v = f(f(sixth * x) + 0.5); y[i] = x * (v < 0 ? 0 : v > 1 ? 1 : v); }
        break;
      }
      case 'Sigmoid':
        for (let i = from; i < to; i++) y[i] = 1 / (1 + Math.exp(-y[i]!));
        break;
      case 'Tanh':
        for (let i = from; i < to; i++) y[i] = Math.tanh(y[i]!);
        break;
    }
  }
}

/**
 * y[at + r·n + c] = y·scale[c0 + c] (+ shift[c0 + c]) for `rows` rows of `n` channels: the folded
 * BatchNormalization on a Gemm/MatMul output, or on a Conv group's patch-major tile output (whose
 * shift is folded into the bias instead: null).
 */
export function scaleColumns(y: Float32Array, at: number, rows: number, n: number, scale: Float32Array, c0: number, shift: Float32Array | null): void {
  for (let r = 0, i = at; r < rows; r++) {
    if (shift) for (let c = 0; c < n; c++, i++) y[i] = f(y[i]! * scale[c0 + c]!) + shift[c0 + c]!;
    else for (let c = 0; c < n; c++, i++) y[i] = y[i]! * scale[c0 + c]!;
  }
}
