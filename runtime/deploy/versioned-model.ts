/**
 * A placed model that came from a bundle: every run names the bundle version that produced it, so a
 * result is attributed exactly even while a switch retires the previous version's last runs.
 */
import type { Feeds } from '../model/feeds.js';
import type { PlacedModel, PlacedRun } from '../scheduler/types.js';

export class VersionedModel implements PlacedModel {
  constructor(readonly inner: PlacedModel, readonly version: string) {}

  get id(): string { return this.inner.id; }
  get lane(): string { return this.inner.lane; }
  get inputs(): PlacedModel['inputs'] { return this.inner.inputs; }
  get outputs(): PlacedModel['outputs'] { return this.inner.outputs; }

  async run(feeds: Feeds): Promise<PlacedRun> {
    const run = await this.inner.run(feeds);
    run.modelVersion = this.version;
    return run;
  }

  snapshot(): Record<string, unknown> {
    return { ...this.inner.snapshot(), version: this.version };
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** `placed` labelled with its bundle version; as it is for the model the daemon was started with. */
export function withVersion(placed: PlacedModel, version: string | undefined): PlacedModel {
  return version === undefined ? placed : new VersionedModel(placed, version);
}
