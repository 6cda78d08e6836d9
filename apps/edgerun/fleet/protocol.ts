/** Messages between the fleet host (main thread) and its worker threads. */
import type { Config } from '../../../runtime/config.js';
import type { DeviceSpec } from '../../../runtime/fleet/fleet-file.js';
import type { DeviceQuery } from '../../../runtime/fleet/fleet-sut.js';

/** workerData: the worker's share of the fleet and how to reach the broker. */
export interface WorkerInput {
  fleet: string;
  /** Model and profile paths already resolved (absolute). */
  devices: DeviceSpec[];
  config: Config;
  url: string;
  protocolVersion?: 4 | 5;
  prefix?: string;
  stateDir: string;
  data: string;
  /** Bounded wait for each device's outbox to drain when it stops. */
  drainMs: number;
  /** The devices run a load generator's queries only (the host's issue()), not their own streams. */
  queries?: boolean;
  /** This thread's index in the host, and how many times the host restarted it (0: its first start). */
  worker: number;
  restart: number;
}

export type ToWorker =
  | { type: 'stop'; drainMs: number }
  | { type: 'query'; device: string; query: DeviceQuery };

export interface DeviceStats { id: string; results: number; pending: number }

/** A worker thread's event loop over one stats period: what its devices' results waited behind. */
export interface ThreadStats {
  /** Event-loop delay (perf_hooks.monitorEventLoopDelay) p99 and max, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Garbage-collection pauses (PerformanceObserver 'gc'): total and longest, ms. */
  gcMs: number;
  gcMaxMs: number;
  periodMs: number;
}

export type FromWorker =
  | { type: 'online'; id: string }
  | { type: 'failed'; id: string; error: string }
  | { type: 'exited'; id: string; reason: 'stopped'; stats: DeviceStats }
  | { type: 'stats'; devices: DeviceStats[]; thread: ThreadStats }
  | { type: 'fatal'; error: string }
  /** A query for a device this thread does not run (not online, stopped): no result will come. */
  | { type: 'query-refused'; device: string; run: string; id: number; error: string };
