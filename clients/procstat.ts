/**
 * Memory of a process from /proc/<pid>/status (VmRSS): the one VmRSS parser, used by the fleet's
 * workers and by the runner's resource sampler (runner/proc.ts). `process.memoryUsage()` opens a file each
 * call and throws EMFILE near the 20,000-file limit, so the reader keeps one descriptor open from
 * the start and re-reads it at offset 0.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export class RssReader {
  private fd: number | null;
  private readonly buf = Buffer.alloc(4096);

  constructor(pid: number | 'self' = 'self') {
    try {
      this.fd = openSync(`/proc/${pid}/status`, 'r');
    } catch {
      this.fd = null;
    }
  }

  /** Resident set size in bytes; null when unavailable (no /proc, process gone). */
  read(): number | null {
    if (this.fd === null) return null;
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      return parseVmRss(this.buf.toString('latin1', 0, n));
    } catch {
      return null;
    }
  }

  close(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* already gone */
      }
      this.fd = null;
    }
  }
}

/** VmRSS of a /proc/<pid>/status text, in bytes; null when absent (kernel threads, zombies). */
export function parseVmRss(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}
