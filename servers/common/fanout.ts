/**
 * Sending frames to sockets, shared by both variants: a broadcast is serialized once and the same
 * Buffer is handed to every receiving socket; a socket whose unsent buffer passes
 * `maxBufferedBytes` is closed with CLOSE_SLOW_CONSUMER (4008) and counted, so one stuck client
 * cannot grow server memory.
 *
 * Write coalescing: the first frame a socket gets in an event-loop turn corks its TCP socket, and
 * one setImmediate uncorks every corked socket, so all frames a socket gets in one turn (many
 * broadcasts, or a batch of acks) leave in one writev instead of one syscall per frame. This uses
 * ws's underlying `_socket` (stable through ws 8, not public API); without it frames are sent
 * one write each. While corked, `bufferedAmount` includes the turn's own frames, so the
 * slow-consumer bound is checked after the uncork (what the kernel did not take is the real
 * backlog), not after each send.
 *
 * A slow consumer's 4008 Close frame queues behind its backlog: a client that still reads gets it
 * (and closes with 4008); one that does not read never will, so after SLOW_CLOSE_GRACE_MS the
 * connection is dropped and counted in wami_slow_consumer_destroyed_total (the client then sees the
 * TCP connection end, 1006). The backlog the kernel holds (several MB on loopback) is invisible
 * here: the bound counts only what waits above it.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CLOSE_SLOW_CONSUMER } from '../../protocol/messages.js';
import type { ServerMetrics } from './metrics.js';

const OPEN = 1;
const CLOSED = 3;
/** How long a slow consumer's close may take before the connection is dropped, ms. */
export const SLOW_CLOSE_GRACE_MS = 2000;
const CORKED = Symbol('wami.corked');

function socketOf(ws: WebSocket): (Socket & { [CORKED]?: boolean }) | undefined {
  return (ws as unknown as { _socket?: Socket & { [CORKED]?: boolean } })._socket;
}

export class Fanout {
  private corked: WebSocket[] = [];
  private readonly uncorkAll = (): void => {
    const list = this.corked;
    this.corked = [];
    for (const ws of list) {
      const s = socketOf(ws);
      if (!s) continue;
      s[CORKED] = false;
      s.uncork();
      if (ws.readyState === OPEN && ws.bufferedAmount > this.maxBufferedBytes) this.closeSlow(ws);
    }
  };

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly metrics: ServerMetrics,
    /** Coalesce a socket's frames of one event-loop turn into one write (default true). */
    private readonly coalesce = true,
  ) {}

  /** Corks the socket for this turn; false if it cannot be corked (then the caller checks the bound itself). */
  private cork(ws: WebSocket): boolean {
    const s = socketOf(ws);
    if (!s || s.destroyed) return false;
    if (s[CORKED]) return true;
    s[CORKED] = true;
    s.cork();
    if (this.corked.push(ws) === 1) setImmediate(this.uncorkAll);
    return true;
  }

  /** Sends one text frame; returns false if the socket is not open (or was just closed as slow). */
  send(ws: WebSocket, frame: string | Buffer): boolean {
    if (ws.readyState !== OPEN) return false;
    const deferCheck = this.coalesce && this.cork(ws);
    ws.send(frame, { binary: false });
    if (!deferCheck && ws.bufferedAmount > this.maxBufferedBytes) {
      this.closeSlow(ws);
      return false;
    }
    return true;
  }

  /** Sends `frame` to every open member except `except`; returns the number of frames sent. */
  broadcast(members: Iterable<WebSocket>, except: WebSocket | null, frame: string): number {
    let buf: Buffer | null = null;
    let n = 0;
    for (const ws of members) {
      if (ws === except || ws.readyState !== OPEN) continue;
      buf ??= Buffer.from(frame, 'utf8');
      const deferCheck = this.coalesce && this.cork(ws);
      ws.send(buf, { binary: false });
      n++;
      if (!deferCheck && ws.bufferedAmount > this.maxBufferedBytes) this.closeSlow(ws);
    }
    if (n > 0) this.metrics.broadcastFrames.inc(n);
    return n;
  }

  private closeSlow(ws: WebSocket): void {
    this.metrics.slowConsumerCloses.inc();
    try {
      ws.close(CLOSE_SLOW_CONSUMER, 'slow consumer');
    } catch {
      // already closing
    }
    // A stuck peer never reads the close frame: after the grace the connection is dropped, and counted.
    const t = setTimeout(() => {
      if (ws.readyState === CLOSED) return;
      this.metrics.slowConsumerDestroyed.inc();
      ws.terminate();
    }, SLOW_CLOSE_GRACE_MS);
    t.unref();
    ws.once('close', () => clearTimeout(t));
  }
}
