/**
 * The server variants a run can compare. A kind is a server design; each kind names the flag that
 * sets how many processes hold its sockets. Pure: no I/O.
 */

/** The kinds of server a variant can be. New kinds (e.g. `floor`, `external`) join this list. */
export const VARIANT_KINDS = ['batched', 'per-request'] as const;
export type VariantKind = (typeof VARIANT_KINDS)[number];

/** The flag that sets how many processes hold a variant's sockets. */
export function processFlag(kind: VariantKind): '--shards' | '--workers' {
  return kind === 'batched' ? '--shards' : '--workers';
}

/** The value of `flag` in a flag list (`--flag N` or `--flag=N`), or undefined. */
export function flagValue(flags: readonly string[], flag: string): string | undefined {
  const i = flags.indexOf(flag);
  if (i >= 0) return flags[i + 1];
  return flags.find((f) => f.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

/** How many server processes hold sockets for a variant: batched --shards N (default 1), per-request --workers W (default CPUs). */
export function serverProcesses(v: { kind: VariantKind; flags: readonly string[]; name?: string }, cpus: number): number {
  const raw = flagValue(v.flags, processFlag(v.kind));
  const n = raw === undefined ? (v.kind === 'batched' ? 1 : cpus) : Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : 1;
}
