/** The drift window: the first and last minute of the measured window, or its halves when it is shorter than two minutes. Pure. */
export const DRIFT_WINDOW_MS = 60_000;

export function driftWindowFor(measureMs: number): number {
  return Math.min(DRIFT_WINDOW_MS, Math.max(0, measureMs) / 2);
}
