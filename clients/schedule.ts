/**
 * The open-loop schedule: pure, seeded, per user. Each user draws from its own PRNG stream
 * (derived from (seed, user)), so a user's updates are the same whichever worker or host runs it.
 *
 * Times are offsets in ms from the schedule's origin t0 (the coordinator's start time on the shared
 * clock); the worker adds t0. Updates are only scheduled in [0, windowMs) (warm-up + measure).
 *
 * The rate may step (piecewise constant, `steps`); arrivals come from the cumulative intensity
 * Λ(t) = ∫ rate: a user's k-th arrival is where Λ reaches L_k, with L_0 = Exp(1) (poisson) or U (fixed,
 * a random phase) and L_{k+1} = L_k + Exp(1) (poisson) or + 1 (fixed). For a constant rate this is the
 * usual exponential gaps of mean 60000/rate ms, or a fixed interval with a random phase.
 *
 * Draw order per user (part of the contract: changing it changes every schedule):
 *   L_0: one draw; per update n = 0, 1, 2, …: card index U, column U, then the increment of L.
 */
import { COLUMNS, type Column } from '../protocol/messages.js';
import { boardOfUser, cardId } from '../protocol/layout.js';
import { nextRandom, userSeed, type RngState } from './prng.js';

export type Arrival = 'poisson' | 'fixed';

export interface RateStep {
  /** Offset from t0, ms, from which the rate applies. */
  atMs: number;
  updatesPerUserPerMin: number;
}

export interface ScheduleConfig {
  seed: number;
  perBoard: number;
  cardsPerBoard: number;
  /**
   * Each board's card ids, when they do not follow the seeded layout (read from the server); a
   * board not listed uses the layout. The draw is the same either way: the k-th card, k uniform.
   */
  boardCards?: ReadonlyMap<number, readonly number[]>;
  /** Updates per user per minute from t0; 0 means the user never sends. */
  updatesPerUserPerMin: number;
  arrival: Arrival;
  /** Length of the sending window (warm-up + measure), ms. Nothing is scheduled at or after it. */
  windowMs: number;
  /** Later rates (piecewise constant), in any order. */
  steps?: RateStep[];
}

/** A user's schedule cursor: small on purpose (one per socket). */
export interface UserSchedule {
  user: number;
  board: number;
  /** mulberry32 state. */
  rng: number;
  /** Index of the next update (0-based). */
  n: number;
  /** Cumulative intensity at the next update. */
  lam: number;
  /** Offset of the next update from t0, ms; Infinity when the user sends no more. */
  next: number;
}

export interface PlannedUpdate {
  n: number;
  /** Offset from t0, ms. */
  offsetMs: number;
  card: number;
  column: Column;
  title: string;
}

interface Segment {
  startMs: number;
  perMs: number;
  lamStart: number;
}

const compiled = new WeakMap<ScheduleConfig, Segment[]>();

/** The rate as segments with their cumulative intensity at the start (cached per config object). */
export function rateSegments(cfg: ScheduleConfig): Segment[] {
  let segs = compiled.get(cfg);
  if (segs) return segs;
  const steps = [{ atMs: 0, updatesPerUserPerMin: cfg.updatesPerUserPerMin }, ...(cfg.steps ?? []).filter((s) => s.atMs > 0)].sort((a, b) => a.atMs - b.atMs);
  segs = [];
  let lam = 0;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (i > 0) {
      const prev = segs[segs.length - 1]!;
      lam += (s.atMs - prev.startMs) * prev.perMs;
    }
    segs.push({ startMs: s.atMs, perMs: Math.max(0, s.updatesPerUserPerMin) / 60_000, lamStart: lam });
  }
  compiled.set(cfg, segs);
  return segs;
}

/** Offset (ms) where the cumulative intensity reaches L; Infinity if it never does. */
export function timeAtIntensity(cfg: ScheduleConfig, L: number): number {
  const segs = rateSegments(cfg);
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i]!;
    if (L >= s.lamStart && s.perMs > 0) {
      const t = s.startMs + (L - s.lamStart) / s.perMs;
      const nextStart = i + 1 < segs.length ? segs[i + 1]!.startMs : Infinity;
      // <=: Λ reaching L exactly where the next segment starts is an arrival there. The next segment,
      // tried first, returns it when its rate is positive; when that rate is 0 (or L sits one ulp
      // below its lamStart) this segment must, or the user's schedule would end here.
      if (t <= nextStart) return t;
    }
  }
  return Infinity;
}

/** Mean gap between one user's updates at the base rate, ms. */
export function meanIntervalMs(cfg: Pick<ScheduleConfig, 'updatesPerUserPerMin'>): number {
  return cfg.updatesPerUserPerMin > 0 ? 60_000 / cfg.updatesPerUserPerMin : Infinity;
}

function increment(cfg: ScheduleConfig, s: RngState): number {
  return cfg.arrival === 'fixed' ? 1 : -Math.log(1 - nextRandom(s));
}

function place(cfg: ScheduleConfig, s: UserSchedule): void {
  const t = timeAtIntensity(cfg, s.lam);
  s.next = t < cfg.windowMs ? t : Infinity;
}

export function initUserSchedule(cfg: ScheduleConfig, user: number): UserSchedule {
  const s: UserSchedule = { user, board: boardOfUser(user, cfg.perBoard), rng: userSeed(cfg.seed, user), n: 0, lam: 0, next: Infinity };
  s.lam = cfg.arrival === 'fixed' ? nextRandom(s) : increment(cfg, s);
  place(cfg, s);
  return s;
}

/** The title of update n of a user: short, deterministic, within MAX_TITLE_LENGTH. */
export function titleFor(user: number, n: number, column: Column): string {
  return `u${user} #${n} to ${column}`;
}

/**
 * Draws the update due at `s.next` and advances the cursor to the following one (Infinity once
 * past the window). Call only while `s.next` is finite.
 */
export function drawUpdate(cfg: ScheduleConfig, s: UserSchedule): PlannedUpdate {
  const offsetMs = s.next;
  const n = s.n;
  const list = cfg.boardCards?.get(s.board);
  const card = list ? list[Math.floor(nextRandom(s) * list.length)]! : cardId(s.board, Math.floor(nextRandom(s) * cfg.cardsPerBoard), cfg.cardsPerBoard);
  const column = COLUMNS[Math.floor(nextRandom(s) * COLUMNS.length)]!;
  s.lam += increment(cfg, s);
  s.n = n + 1;
  place(cfg, s);
  return { n, offsetMs, card, column, title: titleFor(s.user, n, column) };
}

/** Every update of one user in the window, in order (for tests and for inspection). */
export function planUser(cfg: ScheduleConfig, user: number): PlannedUpdate[] {
  const s = initUserSchedule(cfg, user);
  const out: PlannedUpdate[] = [];
  while (s.next !== Infinity) out.push(drawUpdate(cfg, s));
  return out;
}

/** The client message id of a user's update n: unique per sender within a run. */
export function messageId(idPrefix: string, n: number): string {
  return `${idPrefix}-${n}`;
}

/** Inverse of messageId for this run's prefix; -1 when the id is not one of ours. */
export function messageIndex(idPrefix: string, id: string): number {
  // an id of the prefix alone or with '-' alone fails the digit test below (charCodeAt past the end is NaN)
  if (!id.startsWith(idPrefix) || id.charCodeAt(idPrefix.length) !== 45 /* - */) return -1;
  const rest = id.slice(idPrefix.length + 1);
  if (!/^\d{1,9}$/.test(rest)) return -1;
  return Number(rest);
}
