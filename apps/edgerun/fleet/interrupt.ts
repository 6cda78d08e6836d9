/**
 * Ctrl-C (SIGINT) and SIGTERM during a benchmark: instead of dying without a report, the command
 * stops its load generator through `signal`, writes the report of what was measured so far (marked
 * interrupted) and exits with the shell's code for the signal (130, 143).
 */
export interface Interruption {
  readonly signal: AbortSignal;
  /** Settles when a signal came (never otherwise). */
  readonly came: Promise<void>;
  /** The signal's name once one came. */
  by(): NodeJS.Signals | undefined;
  /** 128 + the signal's number, for process.exitCode. */
  exitCode(): number;
  dispose(): void;
}

const CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function interruptOnSignals(log: (line: string) => void): Interruption {
  const controller = new AbortController();
  let by: NodeJS.Signals | undefined;
  let came!: () => void;
  const promise = new Promise<void>((resolve) => { came = resolve; });
  const on = (s: NodeJS.Signals): void => {
    if (by) return;
    by = s;
    log(`${s}: stopping; the report will hold what was measured so far`);
    controller.abort();
    came();
  };
  const onInt = (): void => on('SIGINT');
  const onTerm = (): void => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal, came: promise, by: () => by, exitCode: () => (by ? CODES[by] ?? 1 : 0),
    dispose() { process.off('SIGINT', onInt); process.off('SIGTERM', onTerm); },
  };
}
