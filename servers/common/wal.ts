/**
 * What the WAL's own headers say about checkpoints, read from the `-wal` and `-shm` files (SQLite's
 * documented file formats: https://www.sqlite.org/fileformat2.html#walformat and wal.c's
 * WalIndexHdr / WalCkptInfo). Used by /metrics to show checkpoint behaviour without touching the
 * database connection: how often the WAL went back to its start after a complete checkpoint (its
 * checkpoint sequence number), and how many frames wait to be copied into the database.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface WalState {
  /** WAL header's checkpoint sequence number: +1 each time the WAL restarts from its beginning. */
  checkpointSeq: number;
  /** wal-index header mxFrame: frames in the WAL since its last restart. */
  frames: number;
  /** wal-index nBackfill: of those, frames already copied into the database by a checkpoint. */
  backfilled: number;
}

const WAL_MAGIC = [0x377f0682, 0x377f0683];
/** Bytes of the -shm file read: the two wal-index header copies (48 bytes each) and WalCkptInfo's nBackfill. */
export const SHM_HEAD_BYTES = 100;
export const WAL_HEAD_BYTES = 32;

/**
 * Parses the first 32 bytes of a -wal file (big-endian) and the first 100 of its -shm file (native
 * byte order: little-endian on the machines this runs on). Null when either is too short or the
 * WAL's magic number is wrong (no WAL written yet, or not a WAL).
 */
export function parseWalHeads(walHead: Buffer, shmHead: Buffer): WalState | null {
  if (walHead.length < WAL_HEAD_BYTES || shmHead.length < SHM_HEAD_BYTES) return null;
  if (!WAL_MAGIC.includes(walHead.readUInt32BE(0))) return null;
  if (shmHead[12] !== 1) return null; // wal-index header not initialised
  return { checkpointSeq: walHead.readUInt32BE(12), frames: shmHead.readUInt32LE(16), backfilled: shmHead.readUInt32LE(96) };
}

function readHead(file: string, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  const fd = openSync(file, 'r');
  try {
    const n = readSync(fd, b, 0, bytes, 0);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The WAL state of the database `dbFile`, or null when it cannot be read (no WAL yet, EMFILE, …). Never throws. */
export function readWalState(dbFile: string): WalState | null {
  try {
    return parseWalHeads(readHead(`${dbFile}-wal`, WAL_HEAD_BYTES), readHead(`${dbFile}-shm`, SHM_HEAD_BYTES));
  } catch {
    return null;
  }
}
