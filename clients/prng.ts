/**
 * Small, seeded, dependency-free randomness for the fleet. Everything that must be reproducible
 * (schedules, recipient sampling) derives from the run's seed through these functions, so the same
 * seed gives byte-identical schedules in any process on any host.
 */

/** A mutable PRNG state holder: mulberry32 keeps its whole state in one 32-bit integer. */
export interface RngState {
  rng: number;
}

/** mulberry32: next float in [0, 1); advances `h.rng`. */
export function nextRandom(h: RngState): number {
  let t = (h.rng = (h.rng + 0x6d2b79f5) | 0);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** murmur3's 32-bit finaliser: a good avalanche of one integer. Returns an unsigned 32-bit integer. */
export function fmix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds a (possibly > 32-bit, non-negative) integer seed into 32 bits. */
export function seed32(seed: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return fmix32(lo ^ fmix32(hi + 0x9e3779b9));
}

/** The initial PRNG state of user `user` under run seed `seed`: independent streams per user. */
export function userSeed(seed: number, user: number): number {
  return fmix32(seed32(seed) ^ fmix32(user + 0x632be5ab)) | 0;
}

/** FNV-1a of a string mixed with the seed; unsigned 32-bit. Same result in every process. */
export function hashString(seed: number, s: string): number {
  let h = 0x811c9dc5 ^ seed32(seed);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
