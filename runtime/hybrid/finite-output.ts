/**
 * The analog path's output boundary: a tile result holding NaN or ±Infinity for finite inputs is a
 * device (or device profile) fault, never an answer. It is raised as an accelerator failure, so a
 * FallbackModel answers the request digitally with the reason and a direct caller gets an error.
 */
import { AcceleratorError } from '../scheduler/failure.js';
import type { TensorData } from '../model/tensor.js';

export function checkFiniteOutput(input: TensorData, output: TensorData, layer: string, source: string): void {
  const bad = firstNonFinite(output.data);
  if (bad < 0 || firstNonFinite(input.data) >= 0) return; // non-finite in, non-finite out: the input's doing
  throw new AcceleratorError('driver-error', `${source}: analog layer '${layer}' returned ${(output.data as Float32Array)[bad]} for finite inputs (value ${bad}); the device or its profile is out of range`);
}

function firstNonFinite(data: TensorData['data']): number {
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) return -1;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}
