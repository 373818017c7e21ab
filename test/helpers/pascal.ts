/**
 * Test helper for the Free Pascal server: builds it once per test file (or says why it cannot),
 * seeds temp databases through the CLI, starts the binary on port 0 and reads its port from the
 * "listening on" line, stops it with a signal and reports how it exited.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPascal, PASCAL_BINARY } from '../../servers/pascal/index.js';
import { CLI, spawnListening, stopAllOnFile, type FileServer } from './server.js';

let cached: string | false | null = null;

/** undefined when the server is built and current; the reason to skip when fpc is missing. Throws when the build fails. */
export function pascalSkipReason(): string | undefined {
  if (cached === null) {
    const b = buildPascal();
    cached = b.built ? false : b.reason;
  }
  return cached === false ? undefined : cached;
}

/** A temp dir with a seeded database made by `wami-bench seed` (the same seeding every variant gets). */
export function seedTemp(boards: number, cardsPerBoard: number): { dir: string; db: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-pascal-'));
  const db = join(dir, 'board.db');
  const r = spawnSync(process.execPath, [CLI, 'seed', '--db', db, '--boards', String(boards), '--cards-per-board', String(cardsPerBoard)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`seed failed: ${r.stdout}${r.stderr}`);
  return { dir, db, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The Pascal server as the tests drive it (the same shape as any server started by spawnListening). */
export type PascalServer = FileServer;

/** SIGKILLs every server a test left running and waits for them; for `after()` hooks. */
export const stopAllPascal = stopAllOnFile;

export function startPascal(db: string, flags: string[] = [], timeoutMs = 20_000): Promise<PascalServer> {
  return spawnListening(PASCAL_BINARY, ['--db', db, '--port', '0', ...flags], 'wami-pascal', timeoutMs);
}
