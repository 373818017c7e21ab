/**
 * The batched variant's pure logic, no I/O: the bounded update queue and the commit policy of the
 * writer (retry a failing transaction, then bisect it so one bad row cannot lose a whole batch).
 * The writer thread drives `commitWithSplit` with a real SQLite transaction; tests drive it with
 * exact numbers.
 */

/** FIFO with a bound; `takeAll` hands everything queued to the writer at once (the seed's PopAll). */
export class BoundedQueue<T> {
  private items: T[] = [];
  private peak = 0;
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`queue bound must be a positive integer, got ${max}`);
  }
  get length(): number {
    return this.items.length;
  }
  /** Whether `n` more items fit. */
  hasRoom(n = 1): boolean {
    return this.items.length + n <= this.max;
  }
  /** Appends; returns false (and appends nothing) when the queue is full. */
  push(item: T): boolean {
    if (this.items.length >= this.max) return false;
    this.items.push(item);
    if (this.items.length > this.peak) this.peak = this.items.length;
    return true;
  }
  /** The highest length since the previous call (or since creation); the next period starts at the current length. */
  takePeak(): number {
    const p = Math.max(this.peak, this.items.length);
    this.peak = this.items.length;
    return p;
  }
  /** Removes and returns everything queued, oldest first. */
  takeAll(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }
}

/** One try of one transaction over `items`: all committed or none. */
export type TryCommit<T> = (items: readonly T[]) => { ok: true; startMs: number; endMs: number } | { ok: false; error: unknown };

export interface SplitPolicy {
  /** Extra tries of the same range after a failure before splitting it (default 1). */
  retries: number;
  /**
   * Whether splitting can help with this error. A constraint or trigger failure belongs to one row:
   * split. A busy or locked database is not about any row: splitting would only multiply waiting
   * transactions, so the range fails as a whole. Default: split unless SQLITE_BUSY / SQLITE_LOCKED.
   */
  splittable: (error: unknown) => boolean;
  /**
   * Several writers on one file (batched `--shards N`): SQLITE_BUSY / SQLITE_LOCKED from another
   * writer is waited out inside one try instead of failing it. Each BUSY is still a failed
   * transaction (recorded in `tx`, so counted as a busy hit, one more attempt for its rows and one
   * more retry), followed by `sleep(backoff)` (jittered, doubling from `BUSY_BACKOFF_FIRST_MS` up to
   * `BUSY_BACKOFF_MAX_MS`), until `maxMs` have passed since the try's first BUSY; only then does the
   * try fail. Absent (the single-process default): a BUSY fails the try like any other error.
   */
  busyWait?: { maxMs: number; sleep: (ms: number) => void; now: () => number; random?: () => number };
}

export const BUSY_BACKOFF_FIRST_MS = 0.25;
export const BUSY_BACKOFF_MAX_MS = 8;

export type ItemOutcome = { ok: true; attempts: number; startMs: number; endMs: number; size: number } | { ok: false; attempts: number; error: unknown };

export interface TxRecord {
  size: number;
  ok: boolean;
  /** endMs - startMs of a committed transaction; 0 for a failed one. */
  durationMs: number;
  error?: unknown;
}

export interface SplitResult {
  /** One outcome per input item, same order. */
  outcomes: ItemOutcome[];
  /** Every transaction tried, in order. */
  tx: TxRecord[];
  /** Ranges split in two. */
  splits: number;
  /** Tries beyond the first of any range. */
  retries: number;
}

export function sqliteCode(error: unknown): string {
  const c = (error as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
}

export function isBusyError(error: unknown): boolean {
  const c = sqliteCode(error);
  return c.startsWith('SQLITE_BUSY') || c.startsWith('SQLITE_LOCKED');
}

export const DEFAULT_SPLIT_POLICY: SplitPolicy = { retries: 1, splittable: (e) => !isBusyError(e) };

/**
 * Commits `items`, recursively: try the whole range (1 + `retries` times); if it still fails and
 * the error is splittable, commit each half on its own. A single item that still fails is reported
 * failed. With one bad row among n, this costs about 2·log2(n)·(1+retries) extra transactions.
 * Each item's `attempts` is the number of transactions it took part in. With `policy.busyWait`
 * (several writers on one file), a BUSY inside a try is waited out first (see SplitPolicy).
 */
export function commitWithSplit<T>(items: readonly T[], tryCommit: TryCommit<T>, policy: SplitPolicy = DEFAULT_SPLIT_POLICY): SplitResult {
  const outcomes: ItemOutcome[] = new Array<ItemOutcome>(items.length);
  const attempts = new Array<number>(items.length).fill(0);
  const tx: TxRecord[] = [];
  let splits = 0;
  let retries = 0;

  const run = (lo: number, hi: number): void => {
    const range = items.slice(lo, hi);
    let error: unknown;
    for (let t = 0; t <= policy.retries; t++) {
      if (t > 0) retries++;
      let busySince = -1;
      for (let k = 0; ; k++) {
        for (let i = lo; i < hi; i++) attempts[i]!++;
        const r = tryCommit(range);
        if (r.ok) {
          tx.push({ size: hi - lo, ok: true, durationMs: r.endMs - r.startMs });
          for (let i = lo; i < hi; i++) outcomes[i] = { ok: true, attempts: attempts[i]!, startMs: r.startMs, endMs: r.endMs, size: hi - lo };
          return;
        }
        error = r.error;
        tx.push({ size: hi - lo, ok: false, durationMs: 0, error });
        const bw = policy.busyWait;
        if (!bw || !(bw.maxMs > 0) || !isBusyError(error)) break;
        const now = bw.now();
        if (busySince < 0) busySince = now;
        if (now - busySince >= bw.maxMs) break;
        retries++;
        const jitter = 0.5 + (bw.random ?? Math.random)() / 2;
        bw.sleep(Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_FIRST_MS * 2 ** Math.min(k, 16)) * jitter);
      }
    }
    if (hi - lo > 1 && policy.splittable(error)) {
      splits++;
      const mid = lo + Math.ceil((hi - lo) / 2);
      run(lo, mid);
      run(mid, hi);
      return;
    }
    for (let i = lo; i < hi; i++) outcomes[i] = { ok: false, attempts: attempts[i]!, error };
  };

  if (items.length > 0) run(0, items.length);
  return { outcomes, tx, splits, retries };
}
