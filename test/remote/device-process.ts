/** Runs the real `edgerun accel-emulator` as a child process, as a device supervisor would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';

export function tempSocketPath(name = 'accel.sock'): string {
  return join(mkdtempSync(join(tmpdir(), 'edgerun-')), name);
}

export class DeviceProcess {
  child: ChildProcess | undefined;

  constructor(readonly socket: string, readonly args: string[] = ['--profile', 'ideal']) {}

  /** Starts the process and resolves when it listens (its first stdout line). */
  start(): Promise<void> {
    const child = spawn(process.execPath, ['bin/edgerun.js', 'accel-emulator', '--socket', this.socket, ...this.args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`accel-emulator did not start within 20 s: ${stderr}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('listening on')) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`accel-emulator exited (${code ?? signal}) before listening: ${stderr}`)); });
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT'); // a stopped process is killed all the same, but let it go first
    child.kill('SIGKILL');
    await exited;
  }
}
