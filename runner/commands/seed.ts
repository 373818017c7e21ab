import { resolve } from 'node:path';
import { seedDatabase } from '../../servers/common/db.js';
import { intFlag, parseCommand, strFlag, type CommandSpec } from '../args.js';

const spec: CommandSpec = {
  usage: 'wami-bench seed --db FILE --boards N --cards-per-board M',
  summary: 'Creates a fresh SQLite database (removing FILE, FILE-wal and FILE-shm first) with N boards of M cards each.',
  flagHelp: [
    '--db FILE              database file to create (required)',
    '--boards N             number of boards, 1..1000000 (default 100)',
    '--cards-per-board M    cards per board, 1..100000 (default 20)',
  ],
  options: { db: { type: 'string' }, boards: { type: 'string' }, 'cards-per-board': { type: 'string' } },
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const db = resolve(strFlag(p.values, 'db', undefined));
  const boards = intFlag(p.values, 'boards', 100, 1, 1_000_000);
  const cardsPerBoard = intFlag(p.values, 'cards-per-board', 20, 1, 100_000);
  const t0 = Date.now();
  const r = seedDatabase(db, { boards, cardsPerBoard });
  process.stdout.write(`seeded ${db}: ${r.boards} boards, ${r.cards} cards in ${Date.now() - t0} ms\n`);
  return 0;
}
