/**
 * What the WAL's own headers say about checkpoints, read from the `-wal` and `-shm` files (SQLite's
 * documented file formats: https://www.sqlite.org/fileformat2.html#walformat and wal.c's
 * WalIndexHdr / WalCkptInfo). Used by /metrics to show checkpoint behaviour without touching the
 * database connection: how often the WAL went back to its start after a complete checkpoint (its
 * checkpoint sequence number), and how many frames wait to be copied into the database.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

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

/**
 * Reads the WAL's heads through descriptors it keeps open, and never closes one while this
 * process may hold a connection to the database.
 *
 * Why: SQLite's locks are POSIX advisory locks (fcntl), which belong to the process and the file,
 * not to a descriptor. Closing *any* descriptor of the `-shm` file drops every lock this process
 * holds on it: the WAL write lock of a transaction in progress, readers' marks, and the DMS lock
 * that tells a newly opened connection that the wal-index is in use. ("How To Corrupt An SQLite
 * Database File", section 2.2, https://www.sqlite.org/howtocorrupt.html.) Reading the heads with
 * open/read/close on every scrape did exactly that: a connection opened next by another process
 * found no DMS lock, rebuilt and truncated the `-shm` file under the server, and a per-request
 * worker died of SIGBUS on its mapping (seen in CI, 2026-12-01); another writer could have taken
 * the write lock of a transaction in progress.
 *
 * A descriptor is replaced (and the old one closed) only when its file was unlinked: SQLite removes
 * `-wal` and `-shm` only when the last connection anywhere closes, so no connection uses that inode.
 */
export class WalHeads {
  private readonly fds = new Map<string, number>();

  constructor(readonly dbFile: string) {}

  /** The WAL state, or null when it cannot be read (no WAL yet, EMFILE, …). Never throws. */
  read(): WalState | null {
    try {
      return parseWalHeads(this.head(`${this.dbFile}-wal`, WAL_HEAD_BYTES), this.head(`${this.dbFile}-shm`, SHM_HEAD_BYTES));
    } catch {
      return null;
    }
  }

  /**
   * Closes the descriptors. Call it only once every SQLite connection of this process to the
   * database is closed (the reason is the class's comment); a server never needs to.
   */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private head(file: string, bytes: number): Buffer {
    let fd = this.fds.get(file);
    if (fd !== undefined && fstatSync(fd).nlink === 0) {
      closeSync(fd);
      this.fds.delete(file);
      fd = undefined;
    }
    if (fd === undefined) {
      fd = openSync(file, 'r');
      this.fds.set(file, fd);
    }
    const b = Buffer.alloc(bytes);
    return b.subarray(0, readSync(fd, b, 0, bytes, 0));
  }
}
