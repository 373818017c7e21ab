/**
 * A set of positive integers stored as sorted, disjoint, non-adjacent inclusive ranges in one flat
 * array. A board's seq stream seen by one socket is 1..n with few holes, so it costs a few numbers
 * per socket instead of one entry per update. Appending in order is O(1); anything else is a
 * binary search plus a splice.
 */
export class SeqSet {
  /** [start0, end0, start1, end1, …] */
  private readonly r: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  get rangeCount(): number {
    return this.r.length / 2;
  }

  /** Index (in ranges) of the first range whose end is >= x; rangeCount when none. */
  private find(x: number): number {
    const r = this.r;
    let lo = 0;
    let hi = r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[2 * mid + 1]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  has(x: number): boolean {
    const i = this.find(x);
    return i < this.r.length / 2 && this.r[2 * i]! <= x;
  }

  /** Adds x; returns false when it was already there. */
  add(x: number): boolean {
    const r = this.r;
    const len = r.length;
    if (len === 0 || x > r[len - 1]! + 1) {
      r.push(x, x);
      this.count++;
      return true;
    }
    if (x === r[len - 1]! + 1) {
      r[len - 1] = x;
      this.count++;
      return true;
    }
    const i = this.find(x);
    const nr = len / 2;
    if (i < nr && r[2 * i]! <= x) return false;
    const joinPrev = i > 0 && r[2 * (i - 1) + 1]! === x - 1;
    const joinNext = i < nr && r[2 * i]! === x + 1;
    if (joinPrev && joinNext) {
      r[2 * (i - 1) + 1] = r[2 * i + 1]!;
      r.splice(2 * i, 2);
    } else if (joinPrev) {
      r[2 * (i - 1) + 1] = x;
    } else if (joinNext) {
      r[2 * i] = x;
    } else {
      r.splice(2 * i, 0, x, x);
    }
    this.count++;
    return true;
  }

  forEach(fn: (x: number) => void): void {
    const r = this.r;
    for (let i = 0; i < r.length; i += 2) {
      for (let x = r[i]!; x <= r[i + 1]!; x++) fn(x);
    }
  }

  /** The ranges as [start, end] pairs (a copy). */
  ranges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.r.length; i += 2) out.push([this.r[i]!, this.r[i + 1]!]);
    return out;
  }
}
