/**
 * The supervisor both multi-process servers share: the per-request primary (node:cluster workers)
 * and the batched shard primary (child_process.fork shards). It keeps the children, gathers from
 * them (`collect` -> `collected`, each answer matched by an id, with a timeout), says when one exits
 * on its own (`failed`: no silent half-service), and stops them: ask (IPC or SIGTERM), wait, then
 * SIGKILL, reporting every child that did not stop cleanly.
 *
 * The child side is `answerCollect`: a child answers the primary's `collect` with its health or
 * its metrics as JSON (prom-client, for AggregatorRegistry.aggregate).
 */
import type { ChildProcess } from 'node:child_process';
import { metricsJson, type ServerMetrics } from './metrics.js';

/** What a gather asks every child: its metrics, its health, or (fault injection) to turn the disk-full fault on or off. */
export type GatherWhat = 'metrics' | 'health' | 'disk-full-on' | 'disk-full-off';

/** Primary -> child: collect your part. */
export interface CollectMessage {
  wami: 'collect';
  gid: number;
  what: GatherWhat;
}
/** Child -> primary: my part of gather `gid`. */
export interface CollectedMessage {
  wami: 'collected';
  gid: number;
  data: unknown;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Supervised {
  index: number;
  pid: number;
  child: ChildProcess;
  /** Whether it has exited (or could not run). */
  dead: boolean;
  exited: Promise<ChildExit>;
}

export interface SupervisorOptions {
  /** "worker pid 123", "shard 1 (pid 123)": how messages name a child. */
  describe: (c: Supervised) => string;
  /** Longest wait for the children's answers to one gather, ms. */
  gatherTimeoutMs: number;
  /** Longest wait for a child to stop once asked, before SIGKILL, ms. */
  stopTimeoutMs: number;
  /** What a child is given the stop time for, for the message ("finish its transactions"). Default "stop". */
  stopWhat?: string;
}

export class Supervisor {
  readonly children: Supervised[] = [];
  /** Resolves with a message when a child exits on its own (not during stop()). */
  readonly failed: Promise<string>;
  private failWith: (msg: string) => void = () => {};
  private stopping = false;
  private stopPromise: Promise<string[]> | null = null;
  private nextGid = 1;
  private readonly pending = new Map<number, (data: unknown) => void>();

  constructor(private readonly opts: SupervisorOptions) {
    this.failed = new Promise<string>((r) => (this.failWith = r));
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Takes a started child under supervision. `onExit` hears every exit (also during stop). */
  add(child: ChildProcess, index: number, onExit?: (c: Supervised, exit: ChildExit, stopping: boolean) => void): Supervised {
    let resolveExit!: (e: ChildExit) => void;
    const c: Supervised = { index, pid: child.pid ?? 0, child, dead: false, exited: new Promise<ChildExit>((r) => (resolveExit = r)) };
    child.once('exit', (code, signal) => {
      c.dead = true;
      resolveExit({ code, signal });
      onExit?.(c, { code, signal }, this.stopping);
      if (!this.stopping) this.failWith(`${this.opts.describe(c)} exited (code ${code}, signal ${signal})`);
    });
    child.once('error', (e) => {
      c.dead = true;
      if (!this.stopping) this.failWith(`${this.opts.describe(c)} could not run: ${e.message}`);
    });
    child.on('message', (m: Partial<CollectedMessage> | null) => {
      if (m?.wami === 'collected' && typeof m.gid === 'number') this.pending.get(m.gid)?.(m.data);
    });
    this.children.push(c);
    return c;
  }

  /** The live children (not dead, IPC connected). */
  live(): Supervised[] {
    return this.children.filter((c) => !c.dead && c.child.connected);
  }

  /** Asks every live child for its part; resolves with the answers that came within the timeout. */
  gather(what: GatherWhat): Promise<unknown[]> {
    const live = this.live();
    if (live.length === 0) return Promise.resolve([]);
    const gid = this.nextGid++;
    return new Promise((resolve) => {
      const got: unknown[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(gid);
        resolve(got);
      };
      const timer = setTimeout(done, this.opts.gatherTimeoutMs);
      this.pending.set(gid, (data) => {
        got.push(data);
        if (got.length >= live.length) done();
      });
      for (const c of live) {
        try {
          c.child.send({ wami: 'collect', gid, what } satisfies CollectMessage, (e: Error | null) => e && undefined);
        } catch {
          // exiting: its answer will not come, the timeout ends the gather
        }
      }
    });
  }

  /**
   * Stops every child: `ask` it (default SIGTERM), SIGKILL it after stopTimeoutMs. Resolves with one
   * line per child that did not exit 0 in time, empty when all stopped cleanly. Idempotent.
   */
  stop(ask: (c: Supervised) => void = (c) => c.child.kill('SIGTERM')): Promise<string[]> {
    this.stopping = true;
    this.stopPromise ??= (async () => {
      const problems: string[] = [];
      await Promise.all(
        this.children.map(async (c) => {
          if (c.dead) return;
          let killed = false;
          const t = setTimeout(() => {
            killed = true;
            c.child.kill('SIGKILL');
          }, this.opts.stopTimeoutMs);
          ask(c);
          const { code, signal } = await c.exited;
          clearTimeout(t);
          if (killed)
            problems.push(`${this.opts.describe(c)} did not ${this.opts.stopWhat ?? 'stop'} within ${this.opts.stopTimeoutMs / 1000} s and was killed`);
          else if (code !== 0) problems.push(`${this.opts.describe(c)} exited with code ${code}, signal ${signal}`);
        }),
      );
      return problems;
    })();
    return this.stopPromise;
  }
}

/**
 * The child side of a gather: answers a `collect` with `health()` or this process's metrics as
 * JSON, or applies the disk-full fault with `diskFull` (fault injection; answered `false` when the
 * child has none). Returns true when the message was a collect (handled).
 */
export function answerCollect(
  m: unknown,
  metrics: ServerMetrics,
  health: () => unknown,
  reply: (msg: CollectedMessage) => void,
  diskFull?: (on: boolean) => Promise<void> | void,
): boolean {
  const c = m as Partial<CollectMessage> | null;
  if (c?.wami !== 'collect' || typeof c.gid !== 'number') return false;
  const gid = c.gid;
  if (c.what === 'health') reply({ wami: 'collected', gid, data: health() });
  else if (c.what === 'disk-full-on' || c.what === 'disk-full-off') {
    const on = c.what === 'disk-full-on';
    if (!diskFull) reply({ wami: 'collected', gid, data: false });
    else
      void Promise.resolve()
        .then(() => diskFull(on))
        .then(
          () => reply({ wami: 'collected', gid, data: true }),
          () => reply({ wami: 'collected', gid, data: false }),
        );
  } else
    void metricsJson(metrics).then(
      (data) => reply({ wami: 'collected', gid, data }),
      () => reply({ wami: 'collected', gid, data: [] }),
    );
  return true;
}
