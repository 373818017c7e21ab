/** Main-thread handle of the writer thread: `write(rows)` resolves with the batch's result. */
import { Worker } from 'node:worker_threads';
import type { ToWriter, WriterThreadData } from './writer-thread.js';
import type { BatchWriteResult, WriteRow } from './writer-core.js';

type FromWriter = { type: 'ready' } | { type: 'result'; id: number; result: BatchWriteResult } | { type: 'closed' };

export class WriterThread {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: BatchWriteResult) => void; reject: (e: Error) => void }>();
  private closed: (() => void) | null = null;
  private dead: Error | null = null;
  /** Called once if the thread dies unexpectedly. */
  onFatal: (e: Error) => void = () => {};

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromWriter) => {
      if (m.type === 'result') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m.result);
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
        if (m.type === 'ready') resolve(new WriterThread(worker));
        else reject(new Error(`writer thread sent ${m.type} before ready`));
      });
    });
  }

  write(rows: WriteRow[]): Promise<BatchWriteResult> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'batch', id, rows } satisfies ToWriter);
    });
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
