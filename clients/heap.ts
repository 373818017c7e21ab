/**
 * A binary min-heap of (time, value) pairs in typed arrays: the worker's one timer drives it, so
 * there is no setTimeout per user. Fixed capacity (one entry per user at most).
 */
export class TimeHeap {
  private readonly times: Float64Array;
  private readonly vals: Int32Array;
  private n = 0;

  constructor(capacity: number) {
    this.times = new Float64Array(Math.max(1, capacity));
    this.vals = new Int32Array(Math.max(1, capacity));
  }

  get size(): number {
    return this.n;
  }

  /** Time of the earliest entry; Infinity when empty. */
  peekTime(): number {
    return this.n > 0 ? this.times[0]! : Infinity;
  }

  push(time: number, val: number): void {
    if (this.n >= this.times.length) throw new RangeError('TimeHeap is full');
    let i = this.n++;
    const t = this.times;
    const v = this.vals;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p]! <= time) break;
      t[i] = t[p]!;
      v[i] = v[p]!;
      i = p;
    }
    t[i] = time;
    v[i] = val;
  }

  /** Removes the earliest entry and returns its value; -1 when empty. */
  pop(): number {
    if (this.n === 0) return -1;
    const t = this.times;
    const v = this.vals;
    const top = v[0]!;
    const n = --this.n;
    if (n > 0) {
      const lt = t[n]!;
      const lv = v[n]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && t[c + 1]! < t[c]!) c++;
        if (t[c]! >= lt) break;
        t[i] = t[c]!;
        v[i] = v[c]!;
        i = c;
      }
      t[i] = lt;
      v[i] = lv;
    }
    return top;
  }
}
