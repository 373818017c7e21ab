/**
 * The per-request variant's SQLITE_BUSY retry policy, pure (no clocks, no I/O, injectable random):
 * bounded attempts, a deadline, and exponential backoff with "equal jitter" (half fixed, half random),
 * so contending workers spread out without ever retrying at once.
 */
/** Retry policy (`retryPolicyOf` in config.ts makes one from the variant's options; defaults in model/variants.ts). */
export interface RetryPolicy {
  /** Most transaction attempts per update, the first included (1 = no retry). Default 20. */
  maxAttempts: number;
  /** No new attempt starts later than this after the update was received, ms. Default 2000. */
  deadlineMs: number;
  /** Backoff before the 2nd attempt is drawn from [baseMs/2, baseMs], ms. Default 1. */
  baseMs: number;
  /** Cap of the exponential backoff, ms. Default 50. */
  maxMs: number;
}

/**
 * Backoff after `failedAttempts` failed attempts (>= 1):
 * cap = min(maxMs, baseMs * 2^(failedAttempts-1)); delay = cap/2 + random() * cap/2.
 * `random` returns a number in [0, 1).
 */
export function backoffMs(failedAttempts: number, p: RetryPolicy, random: () => number): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.max(0, failedAttempts - 1));
  return cap / 2 + random() * (cap / 2);
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: 'attempts' | 'deadline' };

/**
 * What to do after `failedAttempts` attempts failed with SQLITE_BUSY, `elapsedMs` after the update
 * arrived: give up when the attempts are used up or the deadline has passed; otherwise wait the
 * backoff, shortened so that the next attempt starts no later than the deadline.
 */
export function decideRetry(failedAttempts: number, elapsedMs: number, p: RetryPolicy, random: () => number): RetryDecision {
  if (failedAttempts >= p.maxAttempts) return { retry: false, reason: 'attempts' };
  if (elapsedMs >= p.deadlineMs) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs: Math.min(backoffMs(failedAttempts, p, random), p.deadlineMs - elapsedMs) };
}

/** Checks a policy's numbers; returns the first problem or null. */
export function validateRetryPolicy(p: RetryPolicy): string | null {
  if (!Number.isSafeInteger(p.maxAttempts) || p.maxAttempts < 1) return `maxAttempts must be an integer >= 1, got ${p.maxAttempts}`;
  if (!(p.deadlineMs >= 0)) return `deadlineMs must be >= 0, got ${p.deadlineMs}`;
  if (!(p.baseMs >= 0)) return `baseMs must be >= 0, got ${p.baseMs}`;
  if (!(p.maxMs >= p.baseMs)) return `maxMs (${p.maxMs}) must be >= baseMs (${p.baseMs})`;
  return null;
}
