/**
 * Gives back the heap a connect burst grew in a process that is idle afterwards: a sharded server's
 * primary. While thousands of sockets wait for their shard, the primary's old generation grows (about
 * 100 MB at 30,000 sockets); once they are handed over it allocates almost nothing. On a quiet machine
 * V8's memory reducer then gives the heap back by itself; on a busy one (a benchmark's: servers and
 * fleet share the cores) it did not, and the primary kept its burst peak for the whole run. Measured
 * with /work/runs/primary-mem.sh (2 shards, connects at 2,500/s, 2026-12-01): 20,000 sockets beside
 * `stress-ng --cpu 1`, the primary stayed at 164 MB without this and fell to 91 MB with it; 30,000
 * sockets on a quiet machine, 70 MB either way. Each full collection shrinks the heap a step (115 →
 * 93 → 25 → 15 MB in one run), so they repeat until one gives back less than a MB.
 *
 * `gc` is V8's, exposed by `--expose-gc` (model/variants.ts SHARD_PRIMARY_NODE_FLAGS); without it
 * nothing is done. A collection runs only after a second with no handoff, never in a burst's middle.
 */
export interface BurstTrimOptions {
  /** Handoffs since the last trim that make a burst worth a collection. */
  minHandoffs: number;
  /** Wait after the last waiting socket left before each collection, ms. */
  delayMs: number;
  /** Most collections per burst. */
  maxRounds: number;
  /** A collection that shrinks the heap by less than this ends the rounds, bytes. */
  minGainBytes: number;
}

export const DEFAULT_BURST_TRIM: BurstTrimOptions = { minHandoffs: 1000, delayMs: 1000, maxRounds: 8, minGainBytes: 1 << 20 };

export class BurstTrim {
  /** Handoffs since the last collection. */
  private handoffs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Collections run so far. */
  rounds = 0;

  constructor(
    private readonly gc: (() => void) | undefined,
    private readonly heapTotal: () => number = () => process.memoryUsage().heapTotal,
    private readonly opts: BurstTrimOptions = DEFAULT_BURST_TRIM,
  ) {}

  /** One socket was handed over by the primary. */
  handedOff(): void {
    this.handoffs++;
  }

  /**
   * No socket waits any more. After a burst, the first collection comes once `delayMs` passed with no
   * socket handed over (a queue that empties for a moment in the middle of a ramp is not its end: the
   * round looks again a delay later), and the next ones follow until the heap stops shrinking.
   */
  idle(): void {
    if (!this.gc || this.timer || this.handoffs < this.opts.minHandoffs) return;
    this.schedule(1, this.heapTotal());
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(round: number, before: number): void {
    const mark = this.handoffs;
    this.timer = setTimeout(() => {
      this.timer = null;
      // sockets came again during the delay: look again one delay later (the last idle of a ramp may have
      // come while this round was pending, and no other would follow it)
      if (this.handoffs !== mark) return this.schedule(round, this.heapTotal());
      this.handoffs = 0;
      this.gc!();
      this.rounds++;
      const after = this.heapTotal();
      if (round < this.opts.maxRounds && before - after >= this.opts.minGainBytes) this.schedule(round + 1, after);
    }, this.opts.delayMs);
    this.timer.unref?.();
  }
}
