/**
 * The coordinator's handle on one worker process: forked with the fleet's node flags and IPC
 * ('advanced' serialization), what it reported so far (connected, drained, final, fatal), how it
 * exited, and the last lines of its stderr. `onChange` is called after anything it says or does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConnectedReport, CoordinatorMessage, TickReport, WorkerFinal, WorkerMessage } from './ipc.js';
import type { Segment } from './plan.js';

const WORKER_JS = fileURLToPath(new URL('./worker.js', import.meta.url));

export class FleetWorker {
  readonly child: ChildProcess;
  exited = false;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exitedPromise: Promise<void>;
  stderr = '';
  connected: ConnectedReport | null = null;
  drained = false;
  final: WorkerFinal | null = null;
  fatal: string | null = null;

  constructor(
    readonly seg: Segment,
    nodeFlags: string[],
    env: NodeJS.ProcessEnv,
    onTick: (w: FleetWorker, m: TickReport) => void,
    onChange: () => void,
  ) {
    const child = fork(WORKER_JS, [], { execArgv: nodeFlags, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env });
    this.child = child;
    let onExit!: () => void;
    this.exitedPromise = new Promise<void>((r) => (onExit = r));
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.on('error', (e) => {
      if (!this.fatal) this.fatal = `worker ${seg.index} could not run: ${e.message}`;
      onChange();
    });
    child.on('exit', (code, sig) => {
      this.exited = true;
      this.exitCode = code;
      this.exitSignal = sig;
      onExit();
      onChange();
    });
    child.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'connected':
          this.connected = m;
          break;
        case 'tick':
          onTick(this, m);
          break;
        case 'drained':
          this.drained = true;
          break;
        case 'final':
          this.final = m;
          break;
        case 'fatal':
          this.fatal = m.message;
          break;
      }
      onChange();
    });
  }

  get index(): number {
    return this.seg.index;
  }

  /** Still ticking: neither finished nor exited. */
  get live(): boolean {
    return this.final === null && !this.exited;
  }

  /** Failed: a fatal report, or exited without its final report. */
  get broken(): boolean {
    return this.fatal !== null || (this.exited && this.final === null);
  }

  tell(m: CoordinatorMessage): void {
    if (this.exited || !this.child.connected) return;
    try {
      this.child.send(m);
    } catch {
      /* exiting */
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Why it failed, for the result's reasons; null when it did not. */
  failure(): string | null {
    if (this.fatal) return `worker ${this.index} failed: ${this.fatal.split('\n').slice(0, 3).join(' | ')}`;
    if (this.final !== null) return null;
    const how = this.exitSignal ? `signal ${this.exitSignal}` : `code ${this.exitCode}`;
    const tail = this.stderr.trim().split('\n').slice(-3).join(' | ');
    return `worker ${this.index} exited (${how}) without its final report${tail ? `: ${tail}` : ''}`;
  }
}
