/**
 * Node-side facts about the Free Pascal server in servers/pascal/ (the server itself is Pascal):
 * where its binary is, how to build it, and its command line, for the runner's `external` variant
 * kind and for tests. Nothing here starts a process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs compiled from dist/servers/pascal/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const PASCAL_DIR = join(ROOT, 'servers', 'pascal');
/** The server binary `npm run build:pascal` writes (ignored by git). */
export const PASCAL_BINARY = join(PASCAL_DIR, 'bin', 'wami-pascal');
/** Its unit-test program (pure parts, exact values; also the differential modes the tests drive). */
export const PASCAL_UNIT_TESTS = join(PASCAL_DIR, 'bin', 'wami-pascal-tests');
export const PASCAL_BUILD_SCRIPT = join(PASCAL_DIR, 'build.sh');

/**
 * The server's command for a runner that fills `{db}` and `{port}` (the `external` variant kind's
 * placeholders). It prints `wami-pascal: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N`
 * (the line runner/server-process.ts parses), serves `/healthz`, and stops gracefully on SIGTERM
 * (exit 0). `--port 0` picks a free port, read from that line.
 */
export const PASCAL_COMMAND_TEMPLATE: readonly string[] = [PASCAL_BINARY, '--db', '{db}', '--port', '{port}'];

/** The default flags the server would use anyway, spelled out for a report that names the command. */
export const PASCAL_DEFAULTS = {
  flushIntervalMs: 100,
  maxQueue: 50_000,
  maxPayloadBytes: 65_536,
  maxBufferedBytes: 1_048_576,
  batchRetries: 1,
  writerBusyTimeoutMs: 5000,
  seqLeaseBlock: 1000,
} as const;

/** Whether `fpc` (Free Pascal) is on the PATH. */
export function fpcAvailable(): boolean {
  const r = spawnSync('fpc', ['-iV'], { encoding: 'utf8' });
  return r.status === 0;
}

export type PascalBuild = { built: true; binary: string } | { built: false; reason: string };

/**
 * Runs servers/pascal/build.sh (fpc recompiles only what changed). Where fpc is missing: not built,
 * with the reason. Throws when fpc is there but the build fails (a real error, not a skip).
 */
export function buildPascal(): PascalBuild {
  if (!fpcAvailable()) return { built: false, reason: 'fpc (Free Pascal) is not installed: the Pascal server cannot be built here' };
  const r = spawnSync('bash', [PASCAL_BUILD_SCRIPT], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(PASCAL_BINARY)) {
    throw new Error(`servers/pascal/build.sh failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  }
  return { built: true, binary: PASCAL_BINARY };
}
