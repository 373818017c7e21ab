/**
 * Bad input from the user: a flag, a scenario file, a result file, an option passed to the library.
 * The CLI prints the message (one line or a short block, never a stack) and exits 2; library callers
 * can tell it apart from a harness failure with `instanceof UsageError`.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}
