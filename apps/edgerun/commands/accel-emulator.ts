/**
 * `edgerun accel-emulator`: the crossbar emulator as a separate device process, served over the
 * remote protocol (drivers/remote/PROTOCOL.md) on a Unix socket or on stdin/stdout. It stands in
 * for a real board: it can be killed, stopped and restarted, and SIGUSR1 toggles an injected
 * "unhealthy" health report (a thermal alarm, say) to exercise the runtime's fallback.
 */
import { Duplex } from 'node:stream';
import { CrossbarEmulator } from '../../../drivers/crossbar/emulator.js';
import { loadProfile } from '../../../drivers/crossbar/profile.js';
import { listenUnix, newBootId, serveStream } from '../../../drivers/remote/server.js';
import { DEFAULT_MAX_PAYLOAD } from '../../../drivers/remote/protocol.js';

export interface AccelEmulatorOptions {
  socket?: string;
  stdio?: boolean;
  profile: string;
  seed: number;
  maxPayload?: number;
}

export async function accelEmulatorCommand(opts: AccelEmulatorOptions): Promise<void> {
  if (!!opts.socket === !!opts.stdio) throw new Error('give exactly one of --socket <path> or --stdio');
  const driver = new CrossbarEmulator(loadProfile(opts.profile), { seed: opts.seed });
  const info = driver.info();
  let forcedUnhealthy = false;
  process.on('SIGUSR1', () => {
    forcedUnhealthy = !forcedUnhealthy;
    log(`health override ${forcedUnhealthy ? 'on: reporting unhealthy' : 'off'}`);
  });
  const options = {
    bootId: newBootId(),
    maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    healthOverride: () => (forcedUnhealthy ? { state: 'unhealthy' as const, detail: 'forced by SIGUSR1' } : undefined),
  };
  const what = `${info.tiles} tiles of ${info.tileRows}×${info.tileCols}, profile ${info.profile}, seed ${opts.seed}, boot ${options.bootId.slice(0, 8)}`;

  if (opts.stdio) {
    // stdout carries frames only: every human-readable line goes to stderr.
    log(`serving on stdio: ${what}`);
    await serveStream(driver, Duplex.from({ readable: process.stdin, writable: process.stdout }), options);
    return;
  }
  const server = await listenUnix(opts.socket!, driver, options);
  // One line on stdout when ready, for supervisors and tests to wait on.
  console.log(`accel-emulator listening on ${server.path} (${what})`);
  await new Promise<void>((resolve) => {
    const stop = (): void => { void server.close().then(resolve); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log(`stopped after ${server.stats.connections} connections, ${server.stats.requests} requests`);
}

const log = (line: string): void => { process.stderr.write(`accel-emulator: ${line}\n`); };
