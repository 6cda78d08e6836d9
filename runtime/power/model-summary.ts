/** A model's graph summary at concrete shapes (batch 1), as the energy estimate needs it. */
import type { Backend } from '../backend.js';
import type { LoadedModel } from '../model/load.js';
import { inspectModel, type GraphSummary } from '../model/inspect.js';
import { observeValues } from '../model/observe.js';

/** Runs the model once on `backend` (normally the digital one) to learn every value's shape. */
export async function observedSummary(backend: Backend, model: LoadedModel): Promise<GraphSummary> {
  const facts = await observeValues(backend, model, 1);
  return inspectModel(model, new Map([...facts].map(([name, v]) => [name, v.dims])));
}
