/**
 * Sending frames to sockets, shared by both variants: a broadcast is serialized once and the same
 * Buffer is handed to every receiving socket; a socket whose unsent buffer passes
 * `maxBufferedBytes` is closed with CLOSE_SLOW_CONSUMER (4008) and counted, so one stuck client
 * cannot grow server memory.
 */
import type { WebSocket } from 'ws';
import { CLOSE_SLOW_CONSUMER } from '../../protocol/messages.js';
import type { ServerMetrics } from './metrics.js';

const OPEN = 1;

export class Fanout {
  constructor(
    private readonly maxBufferedBytes: number,
    private readonly metrics: ServerMetrics,
  ) {}

  /** Sends one text frame; returns false if the socket is not open (or was just closed as slow). */
  send(ws: WebSocket, frame: string | Buffer): boolean {
    if (ws.readyState !== OPEN) return false;
    ws.send(frame, { binary: false });
    if (ws.bufferedAmount > this.maxBufferedBytes) {
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
      ws.send(buf, { binary: false });
      n++;
      if (ws.bufferedAmount > this.maxBufferedBytes) this.closeSlow(ws);
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
    // A stuck peer never reads the close frame: free the socket soon regardless.
    setTimeout(() => ws.terminate(), 2000).unref();
  }
}
