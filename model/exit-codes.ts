/**
 * The CLI's exit codes, one list for every command. The library never exits: it returns an
 * `Outcome`, and the CLI turns it into a code with `exitCodeFor`.
 */
export const EXIT = {
  /** Everything asked for was measured and passed. */
  ok: 0,
  /** A harness error, or a run that errored (the measurement is incomplete). */
  error: 1,
  /** Bad input: flags, a scenario file, a result file. */
  badInput: 2,
  /** Measured, but a threshold, the audit, an SLO or the regression gate failed. */
  failed: 3,
  /** Interrupted (Ctrl-C) before the work was done (the fleet command; 128 + SIGINT). */
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** How a piece of work ended, as the library reports it. */
export type Outcome = 'ok' | 'failed' | 'errored';

export function exitCodeFor(outcome: Outcome): ExitCode {
  return outcome === 'ok' ? EXIT.ok : outcome === 'failed' ? EXIT.failed : EXIT.error;
}
