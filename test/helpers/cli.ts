/** Runs the real `edgerun` CLI as a subprocess, the way a user would. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult { code: number; stdout: string; stderr: string }

export function edgerun(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/edgerun.js', ...args], { cwd: repoRoot, env: { ...process.env, ...env }, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last line of stdout parsed as JSON (the `--json` contract). */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

export interface EdgerunProcess {
  proc: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last `keep` characters of stdout and stderr, interleaved. */
  log(): string;
}

/** Starts a long-running `edgerun` command (serve, detect, listen…), keeping the tail of its output. */
export function startEdgerun(args: string[], env: Record<string, string> = {}, keep = 20_000): EdgerunProcess {
  const proc = spawn(process.execPath, ['bin/edgerun.js', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const add = (b: Buffer): void => { log = (log + b.toString()).slice(-keep); };
  proc.stdout!.on('data', add);
  proc.stderr!.on('data', add);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, exit, log: () => log };
}
