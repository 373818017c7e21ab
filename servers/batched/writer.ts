/** Main-thread handle of the writer thread: `write(rows)` resolves with the batch's result. */
import { Worker } from 'node:worker_threads';
import type { ToWriter, WriterThreadData } from './writer-thread.js';
import type { BatchWriteResult, BoardLease, LeaseGrant, WriteRow } from './writer-core.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

type FromWriter =
  | { type: 'ready'; boards: BoardLease[] }
  | { type: 'result'; id: number; result: BatchWriteResult }
  | { type: 'released'; id: number; error: string | null }
  | { type: 'disk-full'; id: number }
  | { type: 'closed' };

export class WriterThread {
  private nextId = 1;
  // biome-ignore lint/suspicious/noExplicitAny: one map for the answers of every request kind
  private pending = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();
  private closed: (() => void) | null = null;
  private dead: Error | null = null;
  /** Called once if the thread dies unexpectedly. */
  onFatal: (e: Error) => void = () => {};

  private constructor(
    private readonly worker: Worker,
    /** Every board the writer leased at start: [board, last seq handed out, committed lease]. */
    readonly boards: BoardLease[],
  ) {
    worker.on('message', (m: FromWriter) => {
      if (m.type === 'result' || m.type === 'released' || m.type === 'disk-full') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m.type === 'result' ? m.result : m.type === 'released' ? m.error : undefined);
      } else if (m.type === 'closed') {
        this.closed?.();
      }
    });
    const die = (e: Error): void => {
      if (this.dead) return;
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      if (!this.closed) this.onFatal(e);
      this.closed?.();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`writer thread exited with code ${code}`)));
  }

  static start(data: WriterThreadData): Promise<WriterThread> {
    const worker = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: data });
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      const onExit = (code: number): void => reject(new Error(`writer thread exited with code ${code} during start`));
      worker.once('error', onErr);
      worker.once('exit', onExit);
      worker.once('message', (m: FromWriter) => {
        worker.off('error', onErr);
        worker.off('exit', onExit);
        if (m.type === 'ready') resolve(new WriterThread(worker, m.boards));
        else reject(new Error(`writer thread sent ${m.type} before ready`));
      });
    });
  }

  private ask<T>(m: DistributiveOmit<Exclude<ToWriter, { type: 'close' }>, 'id'>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...m, id } as ToWriter);
    });
  }

  /** Commits the rows and the lease grants (lease.ts) in the writer thread. */
  write(rows: WriteRow[], grants: LeaseGrant[] = []): Promise<BatchWriteResult> {
    return this.ask({ type: 'batch', rows, grants });
  }

  /** Releases the leases to [board, last seq handed out]; resolves with the error message when it could not commit, else null. */
  release(finals: Array<[number, number]>): Promise<string | null> {
    return this.ask({ type: 'release', finals });
  }

  /** Fault injection: turns the disk-full fault on or off on the writer's connection. */
  setDiskFull(on: boolean): Promise<void> {
    return this.ask({ type: 'disk-full', on });
  }

  /** Closes the database (after any batch in flight) and ends the thread. */
  close(): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise((resolve) => {
      this.closed = resolve;
      this.worker.postMessage({ type: 'close' } satisfies ToWriter);
    });
  }
}
