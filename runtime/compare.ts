/** Element-wise closeness of two tensors, as numpy.testing.assert_allclose judges it. */
import type { TensorData } from './model/tensor.js';

export interface Comparison {
  pass: boolean;
  maxAbsError: number;
  /** Elements outside atol + rtol·|expected|. */
  mismatches: number;
  reason?: string;
}

export function compareTensors(expected: TensorData, actual: TensorData, rtol: number, atol: number): Comparison {
  if (expected.dims.join(',') !== actual.dims.join(',')) {
    return { pass: false, maxAbsError: Infinity, mismatches: expected.data.length, reason: `shape [${actual.dims.join(', ')}] differs from expected [${expected.dims.join(', ')}]` };
  }
  let maxAbsError = 0;
  let mismatches = 0;
  const e = expected.data as ArrayLike<number | bigint>;
  const a = actual.data as ArrayLike<number | bigint>;
  for (let i = 0; i < e.length; i++) {
    const want = Number(e[i]);
    const got = Number(a[i]);
    const err = Math.abs(got - want);
    const bothNaN = Number.isNaN(want) && Number.isNaN(got);
    if (!bothNaN && !(err <= atol + rtol * Math.abs(want))) mismatches++;
    if (!bothNaN) maxAbsError = Math.max(maxAbsError, Number.isNaN(err) ? Infinity : err);
  }
  return { pass: mismatches === 0, maxAbsError, mismatches };
}
