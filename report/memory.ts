/**
 * Memory, and the design note's three memory claims set beside what a result measured:
 *
 * 1. "30k users could use 500 MB – 1.5 GB RAM": the server tree's RSS at the largest stage; when
 *    that stage is under 30,000 sockets, a straight line through the idle RSS and the RSS at that
 *    stage, carried to 30,000 (an extrapolation, and the text says so).
 * 2. "30k updates take just a couple MB": the bytes of the batched write queue are not measured;
 *    the deepest queue seen and the server's RSS growth are, and the text says which is which.
 * 3. "Reduce the WebSocket read and write buffers (e.g. 4 KB per connection)": the server's RSS
 *    growth per socket and the kernel's TCP buffer memory per socket, against 4 KB.
 * 4. "Compiled Pascal memory control is so tight that every WebSocket connection spends only a tiny
 *    fraction of what it would spend in scripting languages": when the result has an external
 *    variant (the Pascal server of servers/pascal, or any server brought by command) and a built-in
 *    (Node.js) one, their RSS growth per socket side by side at every stage, and the fraction.
 *
 * Figures are medians of the valid runs at the variant's largest stage with a valid run; a variant
 * with none falls back to its invalid runs, marked.
 */
import type { ResultFile, RunRecord } from '../model/result.js';
import { fmtBytes, fmtNum } from './format.js';
import { M, type MetricDef } from './metrics.js';
import { groupByStage, valuesOf, variantsOf, type StageGroup } from './runs.js';
import { median } from './stats.js';

/** The socket count the design note talks about. */
export const CLAIM_SOCKETS = 30_000;
/** "500 MB – 1.5 GB", decimal units as written. */
export const CLAIM_RAM_RANGE: [number, number] = [500e6, 1.5e9];
/** "e.g. 4 KB per connection" */
export const CLAIM_BUFFER_BYTES = 4 * 1024;

export interface Claim {
  id: 'perSocket' | 'ram30k' | 'queue30k' | 'buffers';
  /** The design note's words. */
  quote: string;
  /** One line per variant: what this result measured. */
  measured: string[];
  /** What the result does not measure, or how the figure was made. */
  caveat: string;
}

interface Pick {
  variant: string;
  kind: RunRecord['variantKind'];
  stage: StageGroup;
  runs: RunRecord[];
  fromInvalid: boolean;
}

/** Each variant's largest stage with a valid run (else its largest stage at all, marked). */
function largestStages(result: ResultFile): Pick[] {
  const stages = groupByStage(result);
  const out: Pick[] = [];
  for (const v of variantsOf(result)) {
    const withRuns = stages.filter((g) => (g.cells.find((c) => c.variant === v)?.runs.length ?? 0) > 0);
    const valid = withRuns.filter((g) => (g.cells.find((c) => c.variant === v)?.valid.length ?? 0) > 0);
    const byConn = (a: StageGroup, b: StageGroup) => b.connections - a.connections || b.index - a.index;
    const g = [...valid].sort(byConn)[0] ?? [...withRuns].sort(byConn)[0];
    if (!g) continue;
    const cell = g.cells.find((c) => c.variant === v);
    if (!cell) continue;
    const fromInvalid = cell.valid.length === 0;
    out.push({ variant: v, kind: cell.runs[0]?.variantKind ?? 'batched', stage: g, runs: fromInvalid ? cell.runs : cell.valid, fromInvalid });
  }
  return out;
}

const med = (runs: RunRecord[], m: MetricDef): number | null => {
  const v = valuesOf(runs, m);
  return v.length ? median(v) : null;
};
const medOf = (runs: RunRecord[], get: (r: RunRecord) => number | null): number | null => med(runs, { id: '', label: '', unit: 'count', better: null, get });

function where(p: Pick): string {
  const n = p.runs.length > 1 ? `, median of ${p.runs.length} runs` : '';
  return `at ${fmtNum(p.stage.connections)} sockets${n}${p.fromInvalid ? ', from invalid runs only ⚠' : ''}`;
}

function rangeWord(bytes: number): string {
  const [lo, hi] = CLAIM_RAM_RANGE;
  return bytes < lo ? 'below the claimed range' : bytes > hi ? 'above the claimed range' : 'inside the claimed range';
}

function ramClaim(picks: Pick[]): Claim {
  const measured = picks.map((p) => {
    const rss = med(p.runs, M.rss);
    const inWindow = med(p.runs, M.rssMeasured);
    const pss = med(p.runs, M.pss);
    const idle = med(p.runs, M.rssIdle);
    const per = med(p.runs, M.ramPerSocket);
    if (rss === null) return `${p.variant}: no RSS figure ${where(p)}.`;
    const pssText = pss !== null ? ` (PSS ${fmtBytes(pss)})` : '';
    const windowText = inWindow !== null ? `; ${fmtBytes(inWindow)} at most over the measured window` : '';
    if (p.stage.connections >= CLAIM_SOCKETS)
      return `${p.variant}: server RSS ${fmtBytes(rss)}${pssText} measured ${where(p)}: ${rangeWord(rss)}${windowText}.`;
    if (idle === null || per === null)
      return `${p.variant}: server RSS ${fmtBytes(rss)}${pssText} ${where(p)}${windowText}; no per-socket figure to extrapolate from.`;
    const est = idle + per * CLAIM_SOCKETS;
    return `${p.variant}: server RSS ${fmtBytes(rss)}${pssText} ${where(p)}${windowText}. Extrapolated to ${fmtNum(CLAIM_SOCKETS)}: idle ${fmtBytes(idle)} + ${fmtBytes(per)} per socket × ${fmtNum(CLAIM_SOCKETS)} ≈ ${fmtBytes(est)}, ${rangeWord(est)} (an estimate, not a measurement).`;
  });
  const small = picks.some((p) => p.stage.connections < CLAIM_SOCKETS);
  const windowShown = picks.some((p) => med(p.runs, M.rssMeasured) !== null);
  return {
    id: 'ram30k',
    quote: '30k users could use 500 MB – 1.5 GB RAM',
    measured,
    caveat:
      'RSS of the whole server process tree (all workers or shards), at its peak over the whole run (the connect burst and the closing of every socket included)' +
      (windowShown ? ', and at its peak over the measured window. ' : '. ') +
      (small
        ? `Below ${fmtNum(CLAIM_SOCKETS)} sockets the figure is a straight line through the idle RSS and the RSS at the largest stage; memory need not grow linearly, so run a ${fmtNum(CLAIM_SOCKETS)}-socket stage (ramp-30k) to measure it. `
        : '') +
      'The claim is read in decimal units (500 MB = 500 × 10⁶ bytes).',
  };
}

function queueClaim(result: ResultFile, picks: Pick[]): Claim {
  const valid = result.runs.filter((r) => r.status === 'ok');
  const measured = picks.map((p) => {
    const growth = medOf(p.runs, (r) => r.resources.server.rssBytesMax - r.resources.server.rssBytesIdle);
    const growthText =
      growth !== null ? `; server RSS grew ${fmtBytes(growth)} from idle to peak ${where(p)} (sockets, buffers and heap together, not the queue alone)` : '';
    if (p.kind === 'per-request') return `${p.variant}: no write queue (each update is its own transaction)${growthText}.`;
    const pool = valid.filter((r) => r.variant === p.variant);
    const runs = pool.length ? pool : result.runs.filter((r) => r.variant === p.variant);
    let deepest: RunRecord | null = null;
    for (const r of runs)
      if (r.server.queueDepthMax !== null && (deepest === null || r.server.queueDepthMax > (deepest.server.queueDepthMax ?? -1))) deepest = r;
    const q = deepest
      ? `the write queue held at most ${fmtNum(deepest.server.queueDepthMax)} updates (at ${fmtNum(deepest.stage.connections)} sockets${pool.length ? '' : ', invalid runs ⚠'})`
      : p.kind === 'external'
        ? 'the server reports no queue depth (wami_queue_depth), so its queue is unknown'
        : 'the queue depth was not reported';
    return `${p.variant}: ${q}${growthText}.`;
  });
  const deepest = Math.max(0, ...result.runs.map((r) => r.server.queueDepthMax ?? 0));
  return {
    id: 'queue30k',
    quote: '30k updates take just a couple MB',
    measured,
    caveat:
      'Not measured: the bytes a queued update takes; the result has the queue depth, not its size. ' +
      (deepest < CLAIM_SOCKETS
        ? `No run queued anywhere near ${fmtNum(CLAIM_SOCKETS)} updates (deepest: ${fmtNum(deepest)}), so this result neither confirms nor refutes the claim.`
        : `A run queued ${fmtNum(deepest)} updates; the RSS growth bounds the queue's cost from above.`),
  };
}

const BUFFER_FLAG = /payload|buffer|deflate|compress|sndbuf|rcvbuf/i;

function bufferClaim(picks: Pick[]): Claim {
  const measured = picks.map((p) => {
    const per = med(p.runs, M.ramPerSocket);
    const ktcp = med(p.runs, M.kernelTcpPerSocket);
    const flags = (p.runs[0]?.variantFlags ?? []).filter(
      (f, i, all) => BUFFER_FLAG.test(f) || (i > 0 && BUFFER_FLAG.test(all[i - 1] ?? '') && !f.startsWith('--')),
    );
    const perText =
      per !== null
        ? `server RSS growth ${fmtBytes(per)} per socket (${fmtNum(per / CLAIM_BUFFER_BYTES, 2)}× the 4 KB of the example)`
        : 'no per-socket RSS figure';
    const kText = ktcp !== null ? `; kernel TCP buffers at peak ${fmtBytes(ktcp)} per socket` : '; no kernel TCP figure';
    return `${p.variant}: ${perText}${kText} ${where(p)}${flags.length ? `; buffer flags: ${flags.join(' ')}` : '; default buffer settings'}.`;
  });
  const flagSets = new Set(picks.map((p) => (p.runs[0]?.variantFlags ?? []).filter((f) => BUFFER_FLAG.test(f)).join(' ')));
  return {
    id: 'buffers',
    quote: 'Reduce the WebSocket read and write buffers (e.g. 4 KB per connection)',
    measured,
    caveat:
      'RSS growth per socket is (peak − idle) ÷ sockets: everything a socket costs the server, not the buffers alone. ' +
      'Kernel TCP memory comes from /proc/net/sockstat for the whole machine: both ends of every loopback socket, and only the buffer pages in use at that second; at a few hundred sockets it moves in coarse steps, so its per-socket figure means little there. ' +
      (flagSets.size > 1
        ? 'The variants differ in buffer flags, so their rows show what those flags change.'
        : 'What smaller buffers would save is not measured here: compare variants that differ only in --max-payload-bytes / --max-buffered-bytes.'),
  };
}

const pct = (x: number): string => `${fmtNum(x * 100, 2)}%`;

/**
 * Claim 4: RSS growth per socket of each external variant beside each built-in (Node.js) variant, at
 * every stage, from the valid runs (else the invalid ones, marked). Null unless the result has both.
 */
export function perSocketClaim(result: ResultFile): Claim | null {
  const kinds = new Map<string, RunRecord['variantKind']>();
  for (const r of result.runs) if (!kinds.has(r.variant)) kinds.set(r.variant, r.variantKind);
  const ext = [...kinds].filter(([, k]) => k === 'external').map(([v]) => v);
  const node = [...kinds].filter(([, k]) => k !== 'external').map(([v]) => v);
  if (!ext.length || !node.length) return null;
  const measured: string[] = [];
  for (const g of groupByStage(result)) {
    const fig = (v: string): { value: number | null; invalid: boolean } => {
      const cell = g.cells.find((c) => c.variant === v);
      if (!cell || cell.runs.length === 0) return { value: null, invalid: false };
      const runs = cell.valid.length ? cell.valid : cell.runs;
      return { value: med(runs, M.ramPerSocket), invalid: cell.valid.length === 0 };
    };
    const f = new Map([...ext, ...node].map((v) => [v, fig(v)]));
    const text = (v: string) => {
      const x = f.get(v)!;
      return `${v} ${x.value === null ? 'no figure' : fmtBytes(x.value)}${x.invalid ? ' ⚠ invalid runs' : ''}`;
    };
    const ratios: string[] = [];
    for (const e of ext)
      for (const n of node) {
        const a = f.get(e)?.value ?? null;
        const b = f.get(n)?.value ?? null;
        if (a === null || b === null || !(b > 0)) continue;
        ratios.push(
          a > 0 ? `${e} spends ${pct(a / b)} of ${n}'s (${fmtNum(b / a, 3)}× less)` : `${e} grew by nothing measurable where ${n} grew ${fmtBytes(b)}`,
        );
      }
    measured.push(`${fmtNum(g.connections)} sockets: ${[...ext, ...node].map(text).join(' · ')}${ratios.length ? `: ${ratios.join('; ')}` : ''}.`);
  }
  return {
    id: 'perSocket',
    quote:
      'Compiled Pascal memory control is so tight that every WebSocket connection spends only a tiny fraction of what it would spend in scripting languages',
    measured,
    caveat:
      `RSS growth per socket, (peak − idle) ÷ sockets reached, of each server's whole process tree, median of the valid runs at each stage. ` +
      `${ext.join(', ')} ${ext.length === 1 ? 'is an external server' : 'are external servers'} (started by ${ext.length === 1 ? 'its' : 'their'} own command; the Runs table names it); the harness does not know ${ext.length === 1 ? 'its' : 'their'} language. ` +
      `${node.join(', ')} ${node.length === 1 ? 'is a TypeScript server' : 'are the TypeScript servers'} (Node.js: JIT-compiled JavaScript with a garbage collector, the note's "scripting languages"). ` +
      'The growth holds everything a socket costs under this load: its buffers, per-connection objects, heap growth and SQLite’s page cache filling with the writes, so it is an upper bound of the per-connection cost.',
  };
}

/** The claims, each with one measured line per variant (or per stage); the per-socket one only with an external variant beside a built-in one. Empty when the result has no runs. */
export function designClaims(result: ResultFile): Claim[] {
  const picks = largestStages(result);
  if (picks.length === 0) return [];
  const perSocket = perSocketClaim(result);
  return [...(perSocket ? [perSocket] : []), ramClaim(picks), queueClaim(result, picks), bufferClaim(picks)];
}
