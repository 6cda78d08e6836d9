/**
 * The scheduler as the config describes it (sections placement, scheduler, fallback): models
 * placed by policy, streams with their queues, one place for a daemon to start from.
 */
import type { BackendRegistry } from '../backend.js';
import type { Config } from '../config.js';
import type { LoadedModel } from '../model/load.js';
import { ModelPlacer } from './placement.js';
import { Scheduler } from './scheduler.js';
import type { Clock } from '../ports.js';

export interface ConfiguredScheduler {
  scheduler: Scheduler;
  placer: ModelPlacer;
  /** Stops health checks and probes, closes the scheduler, disposes the placed models. */
  close(): Promise<void>;
}

/** `models` by id (the ids streams and placement.models refer to). */
export async function schedulerFromConfig(config: Config, registry: BackendRegistry, models: ReadonlyMap<string, LoadedModel>, clock?: Clock): Promise<ConfiguredScheduler> {
  registry.setPlacement(config.placement);
  const f = config.fallback;
  const placer = new ModelPlacer(registry, {
    supervisor: { clock, healthIntervalMs: f.healthIntervalMs, healthTimeoutMs: f.healthTimeoutMs, probeInitialMs: f.probeInitialMs, probeMaxMs: f.probeMaxMs },
    fallback: { runTimeoutMs: f.runTimeoutMs },
  });
  const scheduler = new Scheduler({ clock, concurrency: config.scheduler.concurrency });
  const close = async (): Promise<void> => {
    placer.dispose();
    await scheduler.close();
    for (const id of models.keys()) await scheduler.model(id).dispose().catch(() => undefined);
  };
  const placed: string[] = [];
  try {
    for (const [id, model] of models) { scheduler.addModel(await placer.place(id, model)); placed.push(id); }
    for (const [name, s] of Object.entries(config.scheduler.streams)) {
      if (!models.has(s.model)) throw new Error(`config scheduler.streams.${name}.model: no model '${s.model}' (models: ${[...models.keys()].join(', ') || 'none'})`);
      scheduler.addStream(name, s);
    }
  } catch (e) {
    placer.dispose();
    for (const id of placed) await scheduler.model(id).dispose().catch(() => undefined);
    throw e;
  }
  return { scheduler, placer, close };
}
