/**
 * How the remote client reaches a device process: a Unix socket, or the stdin/stdout of a child
 * process it starts itself. A transport is a function that opens a fresh byte stream; the client
 * calls it again to reconnect.
 */
import { createConnection } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex } from 'node:stream';

export type Transport = () => Promise<Duplex>;

export function unixSocketTransport(path: string): Transport {
  return () => new Promise<Duplex>((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => { socket.off('error', reject); resolve(socket); });
    socket.once('error', reject);
  });
}

export interface ChildTransport extends Transport {
  /** The current child process, if one runs. */
  readonly child: () => ChildProcess | undefined;
}

/**
 * Starts `command args` with the protocol on its stdin/stdout (e.g. `edgerun accel-emulator
 * --stdio`); its stderr is passed through for logs. Reconnecting starts a new process.
 */
export function childProcessTransport(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildTransport {
  let current: ChildProcess | undefined;
  const open = (): Promise<Duplex> => new Promise<Duplex>((resolve, reject) => {
    if (current && current.exitCode === null && current.signalCode === null) current.kill('SIGKILL');
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'inherit'] });
    current = child;
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      const stream = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
      // The duplex ends when the process does, whichever pipe notices first.
      child.once('exit', () => stream.destroy());
      stream.on('error', () => undefined);
      child.stdin!.on('error', () => undefined);
      resolve(stream);
    });
  });
  return Object.assign(open, { child: () => current });
}
