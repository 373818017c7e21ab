/**
 * What a per-run hook sees of the run in progress and may do to it, and the hooks themselves: where
 * fault injection (runner/faults.ts) and restarts belong. runner/lifecycle.ts calls them.
 */
import type { FleetProgress, ScheduleTimes } from '../clients/coordinator.js';
import type { Variant } from '../scenarios/schema.js';
import type { RunningServer } from './server-process.js';

/** What a hook can see and do of the run in progress. */
export interface RunHandle {
  /** "batched stage 1/1 (1000 sockets) repeat 1/1" */
  readonly label: string;
  readonly variant: Variant;
  /** The server under test, once started (after a restart, the new one). */
  readonly server: RunningServer | null;
  /** The run's SQLite file. */
  readonly dbFile: string;
  /** Marks the run errored with this reason and stops its fleet. */
  fail(reason: string): void;
  /** The server's process tree now: its pid and every descendant (workers, shards); empty when none runs. */
  serverPids(): number[];
  /** The current server's exit is a fault's doing (a kill): it will not fail the run. */
  expectServerExit(): void;
  /**
   * Starts the variant again on the same file and port (a restart after a kill) and resolves once it
   * answers /healthz; from then on it is the run's server (sampled, scraped, stopped at the end).
   */
  restartServer(): Promise<RunningServer>;
}

/**
 * Per-run hooks, called at fixed points of every run: where fault injection (kill or pause the
 * server at second N, drop a shard) and restarts belong. All optional; a hook that throws fails the run.
 */
export interface RunHooks {
  /** After the server answered /healthz, before sampling and the fleet start. */
  serverStarted?: (run: RunHandle) => void | Promise<void>;
  /** Once a second while the fleet runs, with its progress. */
  second?: (run: RunHandle, p: FleetProgress) => void;
  /** When the fleet's schedule starts, with its times on the shared clock: where a fault at `atSec` lands. */
  scheduled?: (run: RunHandle, t: ScheduleTimes) => void;
  /** After the fleet finished, before the server is stopped. */
  beforeStop?: (run: RunHandle) => void | Promise<void>;
}
