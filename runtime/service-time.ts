/**
 * A modelled service time: the scheduler holds a backend lane for at least a time drawn per job
 * (runtime/scheduler/scheduler.ts, SchedulerOptions.serviceTimeMs), so an emulated device behaves
 * like an accelerator slower than the emulator is on this CPU — a chip's latency, not this
 * machine's — and a fleet benchmark of emulated devices has a service time known in advance. The
 * emulation's own compute time counts inside the draw.
 */

export interface ServiceTime {
  /** fixed: every job takes meanMs; exponential: memoryless draws of mean meanMs (each device an M/M/1 server). */
  distribution: 'fixed' | 'exponential';
  meanMs: number;
}

/** Draws of the service time, ms, from uniform draws in [0, 1). */
export function serviceTimeDraw(t: ServiceTime, uniform: () => number): () => number {
  return t.distribution === 'fixed' ? () => t.meanMs : () => -Math.log(1 - uniform()) * t.meanMs;
}
