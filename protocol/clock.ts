/**
 * The fleet's shared clock: CLOCK_MONOTONIC in milliseconds (float). On one host every process
 * reads the same clock, so `at`/`sentAt` written by one process can be compared in another.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Rounds a time in ms to 3 decimals (µs): how times travel on the wire and in results. */
export function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
