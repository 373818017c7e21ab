/**
 * Each design read against the floor (the `floor` variant kind: the same front, parser and fan-out,
 * acks at once, stores nothing: what the machine itself costs). Per stage, each design's fan-out
 * p99, ack p99 and server CPU as a ratio to the floor's at the same stage (medians of the valid
 * runs), and whether every design sits at the floor: then the machine decides at that stage, not
 * the design. Pure: a function of the result, tested on a fixture with exact numbers and text.
 */
import type { ResultFile } from '../model/result.js';
import { VARIANT_SPECS, type VariantKind } from '../model/variants.js';
import { fmtMs, fmtNum, fmtUnit } from './format.js';
import { M, type MetricDef } from './metrics.js';
import { cellMedian, groupByStage, type StageGroup, type VariantCell } from './runs.js';

/** A design whose fan-out p99 is at most this many times the floor's sits at the floor. */
export const AT_FLOOR_RATIO = 1.2;

/** The figures read against the floor, in order. */
export const FLOOR_METRICS: ReadonlyArray<{ key: 'fanoutP99' | 'ackP99' | 'cpuSec'; label: string; metric: MetricDef }> = [
  { key: 'fanoutP99', label: 'fan-out p99', metric: M.fanoutP99 },
  { key: 'ackP99', label: 'ack p99', metric: M.ackP99 },
  { key: 'cpuSec', label: 'server CPU', metric: M.cpuSec },
];

export interface FloorFigure {
  value: number | null;
  floor: number | null;
  /** value / floor; null when either is missing or the floor's is 0. */
  ratio: number | null;
}

export interface FloorRow {
  variant: string;
  fanoutP99: FloorFigure;
  ackP99: FloorFigure;
  cpuSec: FloorFigure;
}

export interface FloorStage {
  index: number;
  connections: number;
  /** The floor variant the ratios divide by (the first one of the result). */
  floor: string;
  /** Whether the floor has a valid run at this stage (else no ratio). */
  floorValid: boolean;
  rows: FloorRow[];
  /** Every design has a fan-out p99 ratio and each is <= AT_FLOOR_RATIO; null when some ratio is missing. */
  atFloor: boolean | null;
  /** The stage in one sentence. */
  sentence: string;
}

/** Whether a variant kind is a reference that stores nothing (the floor), not a design under comparison. */
export function isReferenceKind(kind: string): boolean {
  return (VARIANT_SPECS as Record<string, { noStorage?: true } | undefined>)[kind as VariantKind]?.noStorage === true;
}

const kindOf = (cell: VariantCell): string | undefined => cell.runs[0]?.variantKind;

/** The stage without its reference variants: the cells the verdict and the decision compare. */
export function designCells(g: StageGroup): StageGroup {
  return { ...g, cells: g.cells.filter((c) => !isReferenceKind(kindOf(c) ?? '')) };
}

function figure(cell: VariantCell, floor: VariantCell, m: MetricDef): FloorFigure {
  const value = cellMedian(cell, m);
  const f = cellMedian(floor, m);
  return { value, floor: f, ratio: value !== null && f !== null && f > 0 ? value / f : null };
}

/** "batched fan-out p99 = 1.1× floor", or without the variant "ack p99 = 17.1× floor" */
const ratioText = (variant: string, label: string, r: number | null): string => `${variant} ${label} = ${r === null ? 'no ratio' : `${fmtNum(r, 3)}× floor`}`;

function sentenceOf(g: StageGroup, floor: VariantCell, floorValid: boolean, rows: FloorRow[], atFloor: boolean | null): string {
  const at = `At ${fmtNum(g.connections)} sockets`;
  if (!floorValid) return `${at} the floor (${floor.variant}) has no valid run, so no design is read against it.`;
  if (rows.length === 0) return `${at} only the floor ran.`;
  const f = rows[0]!;
  const head = `${at} against the floor (fan-out p99 ${fmtMs(f.fanoutP99.floor)}, ack p99 ${fmtMs(f.ackP99.floor)}, server CPU ${fmtUnit(f.cpuSec.floor, 'sec')})`;
  const each = rows.map((r) => FLOOR_METRICS.map((m, i) => ratioText(i === 0 ? r.variant : '', m.label, r[m.key].ratio).trim()).join(', ')).join('; ');
  const tail =
    atFloor === null
      ? ''
      : atFloor
        ? ` ${rows.length > 1 ? 'Both designs sit' : 'The design sits'} at the floor on fan-out p99 (within ${AT_FLOOR_RATIO}×): at this stage the machine decides, not the design.`
        : ` Above the floor on fan-out p99 (more than ${AT_FLOOR_RATIO}×): ${rows
            .filter((r) => (r.fanoutP99.ratio ?? 0) > AT_FLOOR_RATIO)
            .map((r) => r.variant)
            .join(' and ')}; there the design costs more than the machine does.`;
  return `${head}: ${each}.${tail}`;
}

/** Per stage, each design against the floor; empty when the result has no floor variant. */
export function floorStages(result: ResultFile): FloorStage[] {
  const out: FloorStage[] = [];
  for (const g of groupByStage(result)) {
    const floor = g.cells.find((c) => isReferenceKind(kindOf(c) ?? ''));
    if (!floor) continue;
    const floorValid = floor.valid.length > 0;
    const rows: FloorRow[] = designCells(g)
      .cells.filter((c) => c.runs.length > 0)
      .map((c) => ({
        variant: c.variant,
        fanoutP99: figure(c, floor, M.fanoutP99),
        ackP99: figure(c, floor, M.ackP99),
        cpuSec: figure(c, floor, M.cpuSec),
      }));
    const ratios = rows.map((r) => r.fanoutP99.ratio);
    const atFloor = !floorValid || rows.length === 0 || ratios.some((r) => r === null) ? null : ratios.every((r) => (r as number) <= AT_FLOOR_RATIO);
    out.push({
      index: g.index,
      connections: g.connections,
      floor: floor.variant,
      floorValid,
      rows,
      atFloor,
      sentence: sentenceOf(g, floor, floorValid, rows, atFloor),
    });
  }
  return out;
}
