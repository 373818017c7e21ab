/**
 * The fleet's shared clock: CLOCK_MONOTONIC in milliseconds (float). On one host every process
 * reads the same clock, so `at`/`sentAt` written by one process can be compared in another.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
