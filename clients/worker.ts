/**
 * A load-generator worker process: the thin entry around a LoadWorker (load-worker.ts: sockets and
 * schedule) and its Recorder (recorder.ts: latency and accounting). Started by the coordinator
 * (child_process.fork, IPC); the same code can run a segment of a larger fleet on another host
 * (global user ids, `firstUser`). It exits by itself at the hard deadline or when the coordinator
 * goes away; an exception is reported as `fatal`.
 */
import { nowMs } from '../protocol/clock.js';
import type { CoordinatorMessage, WorkerMessage } from './ipc.js';
import { LoadWorker } from './load-worker.js';

function send(m: WorkerMessage, cb?: () => void): void {
  if (!process.connected) return;
  try {
    process.send!(m, undefined, {}, cb ? () => cb() : undefined);
  } catch {
    /* channel closed */
  }
}

let worker: LoadWorker | null = null;
let index = -1;

function exit(code: number): void {
  worker?.release();
  process.exitCode = code;
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(code), 50).unref();
}

process.on('message', (m: CoordinatorMessage) => {
  try {
    switch (m.type) {
      case 'init': {
        index = m.index;
        worker = new LoadWorker(m, send);
        const left = m.hardDeadlineMs - nowMs();
        setTimeout(
          () => {
            process.stderr.write(`fleet worker ${m.index}: hard deadline reached, exiting\n`);
            process.exit(4);
          },
          Math.max(1000, left),
        ).unref();
        worker.begin();
        break;
      }
      case 'stop-connect':
        worker?.stopConnecting();
        break;
      case 'start':
        worker?.start(m);
        break;
      case 'finish':
        worker?.finish(exit);
        break;
    }
  } catch (e) {
    send({ type: 'fatal', index, message: (e as Error).stack ?? String(e) }, () => process.exit(1));
  }
});
process.on('disconnect', () => {
  if (!worker?.isFinishing) process.exit(5);
});
process.on('uncaughtException', (e) => {
  send({ type: 'fatal', index, message: e.stack ?? String(e) }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
});
