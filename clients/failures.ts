/** Classifies client-side failures into the stable kinds of SocketsReport.failuresByKind. */

export type ConnectFailureKind = 'refused' | 'reset' | 'timeout' | 'EADDRNOTAVAIL' | 'EMFILE' | `http-${number}` | 'other';

export function classifyConnectError(err: unknown): ConnectFailureKind {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EADDRNOTAVAIL':
    case 'EADDRINUSE':
      return 'EADDRNOTAVAIL';
    case 'EMFILE':
    case 'ENFILE':
      return 'EMFILE';
    default:
      break;
  }
  if (/handshake has timed out/i.test(msg)) return 'timeout';
  const m = /Unexpected server response: (\d{3})/.exec(msg);
  if (m) return `http-${Number(m[1])}`;
  if (/socket hang up/i.test(msg)) return 'reset';
  return 'other';
}

/** The kind recorded for a socket that closed before the end of the run. */
export function closeKind(code: number): string {
  return `closed-${code}`;
}
