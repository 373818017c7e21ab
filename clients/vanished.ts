/**
 * Noticing a server that went away: sockets the server closed before the end of the run (by close
 * code) and updates due on sockets that were no longer open. In a run with no fault scheduled, that
 * is not a measurement of the server under load but of its absence: the run is `errored`, with a
 * reason that says what was seen. Pure.
 */

/**
 * Close codes that do not say the server went away: a slow consumer closed by a live server (4008),
 * a protocol violation (1002), a frame that is not UTF-8 (1007) or too big (1009). Every other early
 * close (1006 for a connection that ended without a close frame, 1001 for a server stopping, 1011…)
 * does.
 */
const SERVER_ALIVE_CODES = new Set(['4008', '1002', '1007', '1009']);

export interface SocketEventsSeen {
  /** Sockets reached. */
  reached: number;
  closedEarlyByCode: Record<string, number>;
  sendsOnClosed: number;
}

/** Sockets closed early by codes that say the server went away (or dropped them). */
export function closedByServerGone(byCode: Record<string, number>): number {
  let n = 0;
  for (const [code, k] of Object.entries(byCode)) if (!SERVER_ALIVE_CODES.has(code)) n += k;
  return n;
}

/** The reason a run without scheduled faults is not ok because its server went away, or null. */
export function serverGoneReason(e: SocketEventsSeen, faultsScheduled: boolean): string | null {
  if (faultsScheduled) return null;
  const gone = closedByServerGone(e.closedEarlyByCode);
  if (gone === 0) return null;
  const codes = Object.entries(e.closedEarlyByCode)
    .filter(([c]) => !SERVER_ALIVE_CODES.has(c))
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${c} ×${n}`)
    .join(', ');
  const sends = e.sendsOnClosed > 0 ? `; ${e.sendsOnClosed} update(s) fell due on closed sockets and were not sent` : '';
  return `the server went away (or dropped sockets) during the run with no fault scheduled: ${gone} of ${e.reached} socket(s) closed early (${codes})${sends}`;
}
