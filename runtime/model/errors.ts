/** Every way a model can be refused, as a stable code tests and callers can match on. */
export type ModelErrorCode =
  | 'EMPTY' | 'TOO_LARGE' | 'CORRUPT' | 'BAD_IR_VERSION' | 'NO_GRAPH' | 'UNKNOWN_OPSET'
  | 'NO_INPUTS' | 'NO_OUTPUTS' | 'MISSING_INPUT' | 'DANGLING_OUTPUT' | 'DUPLICATE_NAME'
  | 'BAD_TENSOR' | 'EXTERNAL_DATA' | 'BAD_INPUT';

export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(readonly code: ModelErrorCode, message: string) {
    super(message);
  }
}
