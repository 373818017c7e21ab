/** The client fleet's public API (see clients/README.md). */
export { runFleet, histogramOf, FleetConfigError, resolveFleetOptions } from './coordinator.js';
export type { FleetHooks, FleetPhase, FleetProgress, FleetOptions, ResolvedFleetOptions } from './coordinator.js';
export { DEFAULT_GUARD, evaluateGuard, type GuardBounds } from './guard.js';
export { decodeHistogram, encodeHistogram, mergeEncoded, newHistogram, percentilesOf, recordMs } from './histogram.js';
export { planUser, type ScheduleConfig, type PlannedUpdate } from './schedule.js';
export { formatProgress } from './progress.js';
export type * from '../model/fleet-result.js';
