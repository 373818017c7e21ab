/** The audit at scale on a real SQLite file (kept out of the mutation run: seconds per run). */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { seedDatabase } from '../servers/common/db.js';
import { auditDatabase } from '../runner/audit.js';
import { simulate } from './helpers/audit-db.js';

describe('auditDatabase at scale (real SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-audit-scale-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('scale: 100k events in SQLite, audited exactly', () => {
    const file = join(dir, 'big.db');
    seedDatabase(file, { boards: 1000, cardsPerBoard: 10 });
    const ledger = simulate(file, 100_000, 1000, 10, 30);
    const r = auditDatabase(file, ledger);
    assert.deepEqual(
      [r.lostAcked, r.storedNotAcked, r.phantom, r.notBroadcast, r.finalStateMismatches, r.seqGaps, r.seqReused, r.eventsStored, r.ok],
      [0, 0, 0, 0, 0, 0, 0, 100_000, true],
    );
  });
});
