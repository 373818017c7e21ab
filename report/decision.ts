/**
 * The decision: what an architect reads first. Which design to pick at this run's load and the
 * figure that decided it; one paragraph per design saying what it is good for here, from the figures
 * and from how the design works (batched acks after its flush interval; per-request's other workers
 * learn of updates by polling); what changes at other loads (the stages, a capacity search, or what
 * a single stage cannot say); and a line from each report section that has a verdict of its own
 * (SECTION_VERDICTS: the capacity search here; other sections add theirs).
 *
 * The rules are the verdict's (verdict.ts): a design that refused or lost any update never wins a
 * latency or memory criterion, and that is said in the headline, with the count and the share, in
 * the same line. Pure: a function of the result and its verdict, tested with exact text.
 */
import type { ResultFile, RunRecord } from '../model/result.js';
import { resolveBatchedOptions, resolvePerRequestOptions, variantSetFromArgv } from '../model/variants.js';
import { capacityRows, sloText } from './capacity.js';
import { designCells, floorStages } from './floor.js';
import { fmtBytes, fmtMs, fmtNum, fmtRatio, fmtUnit } from './format.js';
import { M, type MetricDef } from './metrics.js';
import { groupByStage, runStanding, serverShape, shapeLabel, stageLabel, valuesOf, type StageGroup, type VariantCell } from './runs.js';
import { median } from './stats.js';
import { integrityOf, integrityProblem, type CriterionResult, type Verdict } from './verdict.js';

/** One design's paragraph. */
export interface DesignParagraph {
  variant: string;
  kind: string;
  /** What it refused or lost at the decision's stage, or null. */
  problem: string | null;
  /** "batched (batched, 1 shard)" */
  head: string;
  /** The paragraph after the head. */
  body: string;
  /** `${head}: ${body}` */
  text: string;
}

export interface Decision {
  /** The stage the paragraphs speak of: the verdict's headline stage, else the largest stage (null when there are no runs). */
  stage: { index: number; connections: number } | null;
  /** One line per design that refused or lost updates at that stage, the count and share in the line. */
  headline: string[];
  /** The pick at this load and the figure that decided it (or why none could). */
  decidedBy: string;
  designs: DesignParagraph[];
  /** What changes at other loads. */
  otherLoads: string[];
  /** Lines from the report's sections that have a verdict of their own. */
  sections: SectionLine[];
}

export interface SectionLine {
  /** The id of the report section it comes from (its anchor in report.html). */
  section: string;
  text: string;
}

/**
 * A report section's contribution to the decision: zero or more lines, each one sentence an
 * architect can act on. Add an entry to SECTION_VERDICTS for a section with a verdict of its own
 * (capacity below; the faults and write-ceiling sections add theirs).
 */
export interface SectionVerdict {
  section: string;
  lines: (result: ResultFile, verdict: Verdict) => string[];
}

/** The order criteria decide in: nothing refused or lost first, then what users see, then durability, then cost. */
export const DECISION_ORDER: ReadonlyArray<CriterionResult['id']> = ['errors', 'fanoutP99', 'ackP99', 'ramPerSocket'];

/** The socket count the project's question is about. */
export const TARGET_SOCKETS = 30_000;

/** The capacity search, in one line per SLO: the largest passing count per design. */
export const capacityVerdict: SectionVerdict = {
  section: 'capacity',
  lines: (result) => {
    const c = result.capacity;
    if (!c) return [];
    const rows = capacityRows(c);
    return [
      `Capacity (SLO ${sloText(c)}): ${rows.map((r) => `${r.variant} ${r.largest === 'none' ? 'never met it' : `${r.largest} sockets`}${r.serverLimit ? '' : ` (${r.why})`}`).join('; ')}.`,
    ];
  },
};

/** Each design against the floor (report/floor.ts): one line per stage where a floor ran. */
export const floorVerdict: SectionVerdict = {
  section: 'floor',
  lines: (result) => floorStages(result).map((s) => s.sentence),
};

/** Sections with a verdict of their own, in the order their lines appear. */
export const SECTION_VERDICTS: SectionVerdict[] = [floorVerdict, capacityVerdict];

/** "a, b and c" (never called with no item). */
const and = (xs: readonly string[]): string => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}` : xs[0]!);

/** "fan-out p99", "ack p99", "RAM per socket": a label inside a sentence. */
const lc = (s: string): string => (/^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s);

const medianOf = (runs: readonly RunRecord[], m: MetricDef): number | null => {
  const v = valuesOf(runs, m);
  return v.length ? median(v) : null;
};

const numMedian = (runs: readonly RunRecord[], get: (r: RunRecord) => number | null | undefined): number | null => {
  const v = runs.map(get).filter((x): x is number => Number.isFinite(x));
  return v.length ? median(v) : null;
};

/** "batched at 1,000 sockets" — the pick and the criterion that decided it, or why nothing did. */
export function decideBy(v: Verdict): string {
  if (!v.headline) return 'No decision: fewer than two designs have valid runs at any stage, so nothing here compares them.';
  const at = `${fmtNum(v.headline.connections)} sockets`;
  for (const id of DECISION_ORDER) {
    const c = v.criteria.find((x) => x.id === id);
    if (!c || c.winner === null) continue;
    const others = v.criteria.filter((x) => x.id !== id && x.winner !== null);
    const also = others.filter((x) => x.winner === c.winner).map((x) => lc(x.label));
    const against = others.filter((x) => x.winner !== c.winner).map((x) => `${x.winner} leads on ${lc(x.label)}`);
    return (
      `At ${at}: ${c.winner}, decided by ${lc(c.label)} — ${c.text}.` +
      (also.length ? ` It also leads on ${and(also)}.` : '') +
      (against.length ? ` ${against.join('; ')}.` : '')
    );
  }
  return `At ${at} no figure separates the designs beyond the noise (fan-out p99, ack p99, RAM per socket and errors tie): at this load either will do, and the choice rests on what the other sections show.`;
}

/** What the design does at this stage that explains its figures: the mechanism, with its own option values. */
function mechanism(cell: VariantCell, runs: readonly RunRecord[], cpuCount: number, fanout: number | null, ack: number | null): string {
  const r = cell.runs[0]!;
  const set = variantSetFromArgv(r.variantKind, r.variantFlags);
  if (r.variantKind === 'batched') {
    const o = resolveBatchedOptions(set);
    const commit = numMedian(runs, (x) => x.server.commitMs?.p99);
    return (
      `Its ack waits for the writer's next commit, by construction: ack p99 ${fmtMs(ack)} ≈ the ${fmtMs(o.flushIntervalMs)} flush interval` +
      `${commit !== null ? ` + commit p99 ${fmtMs(commit)}` : ''} + queueing, tunable with --flush-interval-ms (shorter: smaller, more frequent transactions). ` +
      `Broadcasts go from RAM before the commit, so fan-out (p99 ${fmtMs(fanout)}) does not wait for SQLite.`
    );
  }
  if (r.variantKind === 'per-request') {
    const o = resolvePerRequestOptions(set, cpuCount);
    const busy = numMedian(runs, (x) => x.server.busyHits);
    const retries = numMedian(runs, (x) => x.server.retries);
    const exhausted = numMedian(runs, (x) => x.server.exhausted);
    const retry =
      o.retryMaxAttempts <= 1
        ? `no app retry: the Redbean/Fullmoon baseline${o.txMode === 'deferred' ? ', deferred transactions' : ''}, SQLite's busy_timeout ${fmtMs(o.busyTimeoutMs)}`
        : `SQLITE_BUSY retried up to ${o.retryMaxAttempts} times within ${fmtMs(o.retryDeadlineMs)}`;
    const contention = busy !== null ? `; BUSY hits ${fmtNum(busy)}, retries ${fmtNum(retries)}, exhausted ${fmtNum(exhausted)}` : '';
    const poll =
      o.workers > 1
        ? `Members on the other ${o.workers === 2 ? 'worker' : `${o.workers - 1} workers`} learn of an update only by polling SQLite every ${fmtMs(o.pollMs)} (--poll-ms), so a broadcast can wait up to one poll period: fan-out p99 ${fmtMs(fanout)}.`
        : `With one worker every member is local: no poll stands between commit and broadcast (fan-out p99 ${fmtMs(fanout)}).`;
    return `Each update is its own transaction, acked once committed: ack p99 ${fmtMs(ack)} (${retry}${contention}). ${poll}`;
  }
  return `Fan-out p99 ${fmtMs(fanout)}, ack p99 ${fmtMs(ack)}.`;
}

/** "best on fan-out p99 and RAM per socket; behind on ack p99 (×2.3 per-request's); excluded from …". */
function standing(variant: string, criteria: readonly CriterionResult[]): string {
  const best: string[] = [];
  const tied: string[] = [];
  const behind: string[] = [];
  const excluded: string[] = [];
  for (const c of criteria) {
    const me = c.candidates.find((x) => x.variant === variant);
    if (!me || me.value === null) continue;
    const label = lc(c.label);
    if (me.excluded !== undefined) excluded.push(label);
    else if (c.winner === variant) best.push(label);
    else if (c.tied.includes(variant)) tied.push(label);
    else {
      const lead = c.winner ?? c.tied[0];
      const w = c.candidates.find((x) => x.variant === lead);
      if (!w || w.value === null) continue;
      const ratio = w.value > 0 ? me.value / w.value : null;
      behind.push(
        `${label} (${ratio !== null ? `${fmtRatio(ratio)} ${c.winner ?? c.tied.join(' and ')}'s` : `${fmtUnit(me.value, c.metric.unit)} vs ${fmtUnit(w.value, c.metric.unit)}`})`,
      );
    }
  }
  const parts = [
    best.length ? `best on ${and(best)}` : '',
    tied.length ? `tied on ${and(tied)}` : '',
    behind.length ? `behind on ${behind.join(', ')}` : '',
    excluded.length ? `excluded from ${and(excluded)}` : '',
  ].filter(Boolean);
  return parts.length ? `At this load it is ${parts.join('; ')}.` : '';
}

/** One design's paragraph at the decision's stage. */
export function designParagraph(g: StageGroup, cell: VariantCell, v: Verdict, cpuCount: number): DesignParagraph {
  const first = cell.runs[0];
  if (!first) return para(cell.variant, 'unknown', null, cell.variant, `not run at ${stageLabel(g)}.`);
  const shape = shapeLabel(serverShape(first, cpuCount), false);
  const head = cell.variant === first.variantKind ? `${cell.variant} [${shape}]` : `${cell.variant} [${first.variantKind}, ${shape}]`;
  const problem = integrityProblem(integrityOf(cell.valid.length > 0 ? cell.valid : cell.runs));
  const prob = problem ? ` ${problem[0]!.toUpperCase()}${problem.slice(1)}, so it wins no latency or memory criterion.` : '';
  if (cell.valid.length === 0) {
    const why = [...new Set(cell.runs.flatMap((r) => r.reasons))].slice(0, 2).join('; ');
    return para(
      cell.variant,
      first.variantKind,
      problem,
      head,
      `no valid run at ${fmtNum(g.connections)} sockets (${cell.runs.map(runStanding).join(', ')}${why ? `: ${why}` : ''}), so its figures count for nothing here.${prob}`,
    );
  }
  const runs = cell.valid;
  const fanout = medianOf(runs, M.fanoutP99);
  const ack = medianOf(runs, M.ackP99);
  const ram = medianOf(runs, M.ramPerSocket);
  const cpu = medianOf(runs, M.cpuSec);
  const figures = `Fan-out p99 ${fmtMs(fanout)}, ack p99 ${fmtMs(ack)}, RAM per socket ${fmtBytes(ram)}, server CPU ${fmtUnit(cpu, 'sec')}.`;
  const criteria = v.byStage.find((s) => s.index === g.index)?.criteria ?? [];
  const body = [prob.trim(), figures, mechanism(cell, runs, cpuCount, fanout, ack), standing(cell.variant, criteria)].filter(Boolean).join(' ');
  return para(cell.variant, first.variantKind, problem, head, body);
}

function para(variant: string, kind: string, problem: string | null, head: string, body: string): DesignParagraph {
  return { variant, kind, problem, head, body, text: `${head}: ${body}` };
}

/** "fan-out p99 from 1,000 to 5,000 sockets: batched 4.2 ms → 9.1 ms, per-request 31 ms → 80 ms". */
function trend(stages: readonly StageGroup[], m: MetricDef): string | null {
  const parts: string[] = [];
  // called with two stages or more
  for (const variant of stages[0]!.cells.map((c) => c.variant)) {
    const pts = stages
      .map((g) => {
        const c = g.cells.find((x) => x.variant === variant);
        return c ? { n: g.connections, v: medianOf(c.valid, m) } : null;
      })
      .filter((p): p is { n: number; v: number } => p !== null && p.v !== null);
    if (pts.length < 2) continue;
    const a = pts[0]!;
    const b = pts[pts.length - 1]!;
    parts.push(`${variant} ${fmtUnit(a.v, m.unit)} at ${fmtNum(a.n)} → ${fmtUnit(b.v, m.unit)} at ${fmtNum(b.n)}`);
  }
  return parts.length ? `${m.label[0]!.toUpperCase()}${m.label.slice(1)}: ${parts.join('; ')}` : null;
}

/** What changes at other loads: the stages' trends and where a criterion's winner changes, or what one stage cannot say. */
export function otherLoads(result: ResultFile, v: Verdict): string[] {
  const stages = groupByStage(result).map(designCells);
  const out: string[] = [];
  if (stages.length > 1) {
    for (const m of [M.fanoutP99, M.ackP99, M.ramPerSocket]) {
      const t = trend(stages, m);
      if (t) out.push(`${t}.`);
    }
    for (const id of DECISION_ORDER) {
      const winners = v.byStage
        .map((s) => ({ n: s.connections, c: s.criteria.find((c) => c.id === id) }))
        .filter((x) => x.c && (x.c.winner !== null || x.c.tied.length > 0));
      const names = [...new Set(winners.map((x) => x.c!.winner ?? 'tie'))];
      if (names.length > 1) {
        const label = winners[0]!.c!.label;
        out.push(`${label} changes hands: ${winners.map((x) => `${x.c!.winner ?? 'tie'} at ${fmtNum(x.n)}`).join(', ')}.`);
      }
    }
    if (out.length === 0) out.push('The stages agree: no criterion changes hands between them.');
    return out;
  }
  if (result.capacity) return out;
  const g = stages[0];
  if (!g) return out;
  const k = TARGET_SOCKETS / g.connections;
  const per = g.cells
    .map((c) => {
      const ram = medianOf(c.valid, M.ramPerSocket);
      return ram === null ? null : `${c.variant} ${fmtBytes(ram * TARGET_SOCKETS)} (${fmtBytes(ram)} per socket)`;
    })
    .filter(Boolean);
  const delivered = g.cells.map((c) => medianOf(c.valid, M.deliveredPerSec)).find((x) => x !== null);
  out.push(
    `One stage (${fmtNum(g.connections)} sockets) says nothing measured about other loads.${
      g.connections < TARGET_SOCKETS && per.length
        ? ` Straight lines to ${fmtNum(TARGET_SOCKETS)} sockets, not measurements: server RSS growth ${per.join(', ')}` +
          (delivered ? `; at the same rate per user, ${fmtNum(delivered * k)} broadcasts/s instead of ${fmtNum(delivered)}.` : '.')
        : ''
    } Run ramp-30k (stages up to 30,000) or wami-bench capacity to measure how each design scales.`,
  );
  return out;
}

/** The decision of a result, from its verdict. */
export function computeDecision(result: ResultFile, v: Verdict): Decision {
  const stages = groupByStage(result).map(designCells);
  // The verdict's stage; with nothing comparable, the largest stage, so each design is still described.
  const g = v.headline ? stages.find((s) => s.index === v.headline!.index) : [...stages].sort((a, b) => b.connections - a.connections || b.index - a.index)[0];
  const designs = g ? g.cells.map((c) => designParagraph(g, c, v, result.environment.cpuCount)) : [];
  const headline = designs
    .filter((d) => d.problem !== null)
    .map((d) => `At ${fmtNum(g!.connections)} sockets ${d.variant} ${d.problem}; it wins no latency or memory criterion.`);
  const sections = SECTION_VERDICTS.flatMap((s) => s.lines(result, v).map((text) => ({ section: s.section, text })));
  return {
    stage: g ? { index: g.index, connections: g.connections } : null,
    headline,
    decidedBy: decideBy(v),
    designs,
    otherLoads: otherLoads(result, v),
    sections,
  };
}
