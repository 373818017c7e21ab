/**
 * The Faults section's data: for each fault of the scenario, what each run lost, side by side, and
 * the same in words ("batched broadcast 3 updates it never stored; per-request none"). Pure: a
 * function of result.json (runs[].faults), tested on fixtures.
 */
import { describeFault, type FaultRecord } from '../model/faults.js';
import type { ResultFile, RunRecord } from '../model/result.js';
import { fmtBytes, fmtMs, fmtNum } from './format.js';

export interface FaultColumn {
  run: RunRecord;
  /** "batched", or "batched · stage 1 · #2" when the result has several runs of a variant. */
  label: string;
  fault: FaultRecord;
}

export interface FaultBlock {
  /** The fault as the scenario set it, e.g. "kill at 8 s, restart after 2 s". */
  title: string;
  kind: FaultRecord['kind'];
  columns: FaultColumn[];
  /** Rows: a measure and one cell per column. */
  rows: Array<{ label: string; cells: string[]; bad?: boolean[] }>;
  /** The loss in words, one sentence per measure that differs from "none everywhere". */
  words: string[];
}

/** The runs that recorded faults. */
export function faultRuns(result: ResultFile): RunRecord[] {
  return result.runs.filter((r) => (r.faults?.length ?? 0) > 0);
}

const counted = (x: number, one: string, many: string): string => `${fmtNum(x)} ${x === 1 ? one : many}`;

/** "batched 3, per-request none" style list of per-column values; "none" when all are 0. */
function perColumn(cols: FaultColumn[], value: (f: FaultRecord) => number, fmt: (x: number) => string): string {
  if (cols.every((c) => value(c.fault) === 0)) return 'none';
  return cols.map((c) => `${c.label} ${value(c.fault) === 0 ? 'none' : fmt(value(c.fault))}`).join('; ');
}

function wordsOf(cols: FaultColumn[]): string[] {
  const w: string[] = [];
  const kill = cols[0]?.fault.kind === 'kill';
  // what was broadcast and never stored: the design's window (batched) or nothing
  const bns = cols.map((c) => {
    const f = c.fault;
    const x = f.loss.broadcastNotStored;
    if (x === 0) return `${c.label} none`;
    const gap = kill && f.loss.maxBroadcastToCrashMs !== null ? ` (broadcast up to ${fmtMs(f.loss.maxBroadcastToCrashMs)} before the kill)` : '';
    return `${c.label} broadcast ${counted(x, 'update', 'updates')} it never stored${gap}`;
  });
  w.push(`Broadcast but never stored: ${cols.every((c) => c.fault.loss.broadcastNotStored === 0) ? 'none' : bns.join('; ')}.`);
  w.push(
    `Acked updates lost: ${perColumn(
      cols,
      (f) => f.loss.lostAcked,
      (x) => counted(x, 'update', 'updates'),
    )}.`,
  );
  w.push(
    `Seqs reused: ${perColumn(
      cols,
      (f) => f.loss.seqReused,
      (x) => counted(x, 'seq', 'seqs'),
    )}.`,
  );
  w.push(
    `Updates left unanswered (in flight when their socket closed, or never answered): ${perColumn(
      cols,
      (f) => f.loss.unanswered,
      (x) => fmtNum(x),
    )}${
      cols.some((c) => c.fault.loss.storedUnacked > 0)
        ? `; of them stored anyway: ${perColumn(
            cols,
            (f) => f.loss.storedUnacked,
            (x) => fmtNum(x),
          )}`
        : ''
    }.`,
  );
  const gaps = cols.map((c) =>
    c.fault.loss.seqGapSeqs === 0
      ? `${c.label} none`
      : `${c.label} ${fmtNum(c.fault.loss.seqGapSeqs)} on ${counted(c.fault.loss.boardsWithGaps, 'board', 'boards')}`,
  );
  w.push(`Seqs skipped (gaps, allowed and counted): ${cols.every((c) => c.fault.loss.seqGapSeqs === 0) ? 'none' : gaps.join('; ')}.`);
  if (kill) {
    const ready = cols
      .filter((c) => c.fault.restart)
      .map((c) => {
        const r = c.fault.restart!;
        return `${c.label} answered ${fmtMs(r.readyMs)} after the kill, first ack ${r.firstAckMs === null ? 'never' : `${fmtMs(r.firstAckMs)} later`}`;
      });
    if (ready.length) w.push(`Restart: ${ready.join('; ')}.`);
    const storm = cols.map((c) => {
      const k = c.fault.sockets;
      return `${c.label}: ${fmtNum(k.closed)} sockets closed, ${fmtNum(k.reconnected)} reopened, ${k.allBackSec === null ? 'never all back' : `all back after ${fmtNum(k.allBackSec)} s`}, ${fmtNum(k.sendsOnClosed)} updates fell due on closed sockets`;
    });
    w.push(`Reconnect storm (jittered backoff): ${storm.join('; ')}.`);
  }
  const kind = cols[0]?.fault.kind;
  if (kind === 'slow-consumers') {
    const closes = cols.map((c) => {
      const n = c.fault.errorsByCode['closed-4008'] ?? 0;
      return `${c.label} ${n === 0 ? 'closed none of them' : `closed ${counted(n, 'socket', 'sockets')} as slow consumers (4008)`}`;
    });
    w.push(`Slow consumers: ${closes.join('; ')}.`);
  }
  if (kind !== 'kill') {
    const lat = cols.map((c) => `${c.label} ack ${fmtMs(c.fault.latencyMax?.ackP99Ms)}, fan-out ${fmtMs(c.fault.latencyMax?.fanoutP99Ms)}`);
    w.push(`Worst per-second p99 from the start to 2 s after the end${kind === 'slow-consumers' ? ' (the stalled sockets left out)' : ''}: ${lat.join('; ')}.`);
    const rss = cols.map(
      (c) => `${c.label} ${fmtBytes(c.fault.rssBytes.before)} → ${fmtBytes(c.fault.rssBytes.duringMax)} → ${fmtBytes(c.fault.rssBytes.after)}`,
    );
    w.push(`Server RSS before → most during → after: ${rss.join('; ')}.`);
  }
  return w;
}

/** One block per fault of the scenario (faults in order), each with every run that recorded it. */
export function faultBlocks(result: ResultFile): FaultBlock[] {
  const runs = faultRuns(result);
  if (runs.length === 0) return [];
  const perVariant = new Map<string, number>();
  for (const r of runs) perVariant.set(r.variant, (perVariant.get(r.variant) ?? 0) + 1);
  const label = (r: RunRecord): string => (perVariant.get(r.variant)! > 1 ? `${r.variant} · stage ${r.stage.index + 1} · #${r.repeat}` : r.variant);
  const n = Math.max(...runs.map((r) => r.faults!.length));
  const blocks: FaultBlock[] = [];
  for (let i = 0; i < n; i++) {
    const columns = runs.flatMap((r) => (r.faults![i] ? [{ run: r, label: label(r), fault: r.faults![i]! }] : []));
    const first = columns[0]!.fault;
    const row = (lbl: string, cell: (f: FaultRecord) => string, bad?: (f: FaultRecord) => boolean) => ({
      label: lbl,
      cells: columns.map((c) => cell(c.fault)),
      ...(bad ? { bad: columns.map((c) => bad(c.fault)) } : {}),
    });
    const rows: FaultBlock['rows'] = [
      row(
        'acked updates lost (must be 0)',
        (f) => fmtNum(f.loss.lostAcked),
        (f) => f.loss.lostAcked > 0,
      ),
      row(
        'seqs reused (must be 0)',
        (f) => fmtNum(f.loss.seqReused),
        (f) => f.loss.seqReused > 0,
      ),
      row('broadcast, never stored', (f) => fmtNum(f.loss.broadcastNotStored)),
      ...(first.kind === 'kill' ? [row('  largest gap, broadcast to kill', (f) => fmtMs(f.loss.maxBroadcastToCrashMs))] : []),
      row('unanswered (in flight at the fault)', (f) => fmtNum(f.loss.unanswered)),
      row('  of them stored anyway', (f) => fmtNum(f.loss.storedUnacked)),
      row('seqs skipped (gaps)', (f) => `${fmtNum(f.loss.seqGapSeqs)}${f.loss.boardsWithGaps ? ` on ${fmtNum(f.loss.boardsWithGaps)} boards` : ''}`),
      ...(first.kind === 'kill'
        ? [row('restarted server answered after', (f) => fmtMs(f.restart?.readyMs)), row('first ack after that', (f) => fmtMs(f.restart?.firstAckMs))]
        : []),
      row('worst ack · fan-out p99 of a second, fault + 2 s', (f) => `${fmtMs(f.latencyMax?.ackP99Ms)} · ${fmtMs(f.latencyMax?.fanoutP99Ms)}`),
      row('sockets closed · reopened', (f) => `${fmtNum(f.sockets.closed)} · ${fmtNum(f.sockets.reconnected)}`),
      row('all sockets back after', (f) => (f.sockets.allBackSec === null ? 'never' : `${fmtNum(f.sockets.allBackSec)} s`)),
      row('updates due on closed sockets', (f) => fmtNum(f.sockets.sendsOnClosed)),
      row(
        'errors during (by code)',
        (f) =>
          Object.entries(f.errorsByCode)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${fmtNum(v)}`)
            .join(', ') || 'none',
      ),
      row('server RSS before · during (max) · after', (f) => [f.rssBytes.before, f.rssBytes.duringMax, f.rssBytes.after].map((x) => fmtBytes(x)).join(' · ')),
      row('injected', (f) => f.injected + (f.problem ? ` (problem: ${f.problem})` : '')),
    ];
    blocks.push({ title: describeFault(first.spec), kind: first.kind, columns, rows, words: wordsOf(columns) });
  }
  return blocks;
}
