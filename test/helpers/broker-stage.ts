/**
 * What a describe block of CLI tests against a broker shares: a real Mosquitto, a temporary
 * directory and the `edgerun` processes it starts, all stopped, killed and removed after the block.
 */
import { afterAll, beforeAll } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mosquitto } from './mosquitto.js';
import { startEdgerun, type EdgerunProcess } from './cli.js';

export interface BrokerStage {
  readonly broker: Mosquitto;
  readonly dir: string;
  /** Starts `edgerun args…` (the tail of its output kept, 1 MiB). */
  start(args: string[]): EdgerunProcess;
}

export function brokerStage(dirPrefix: string): BrokerStage {
  let broker: Mosquitto | undefined;
  let dir = '';
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    broker = await Mosquitto.start({ persistence: false });
    dir = mkdtempSync(join(tmpdir(), dirPrefix));
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get broker() { return broker!; },
    get dir() { return dir; },
    start(args) {
      const p = startEdgerun(args, {}, 1 << 20);
      procs.push(p.proc);
      return p;
    },
  };
}
