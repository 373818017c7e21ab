/**
 * Small CLI helpers on top of node:util parseArgs, shared by every command: typed flags, `--help`,
 * and usage errors that name the flag in one line and exit 2 (a near-miss flag gets "did you mean",
 * a negative number is taken as a value and then range-checked; the help is printed only on --help).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { didYouMean, fsProblem, UsageError } from '../model/errors.js';

export { didYouMean, editDistance } from '../model/errors.js';
import { parseFlagText } from '../model/options.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandSpec {
  /** e.g. "wami-bench seed --db FILE --boards N --cards-per-board M" */
  usage: string;
  /** One paragraph saying what the command does. */
  summary: string;
  /** Flag help lines, e.g. ["--db FILE    database file to create (required)"]. */
  flagHelp: string[];
  options: Options;
  /** Whether positional arguments are allowed. */
  allowPositionals?: boolean;
}

export function helpText(spec: CommandSpec): string {
  return [`Usage: ${spec.usage}`, '', spec.summary, '', 'Options:', ...spec.flagHelp.map((l) => `  ${l}`), '  -h, --help   show this help'].join('\n');
}

/** "wami-bench fleet" from the usage line, for "run wami-bench fleet --help". */
function commandOf(spec: CommandSpec): string {
  return spec.usage.split(' ').slice(0, 2).join(' ');
}

/** A value that is a negative number (`-5`, `-0.5`, `-1e3`), which parseArgs would take for a flag. */
const NEGATIVE_NUMBER = /^-(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/**
 * `--flag -5` → `--flag=-5` for flags that take a value, so a negative number reaches the flag's
 * own range check ("must be between 1 and …, got -5") instead of parseArgs' "ambiguous argument".
 */
export function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([^=]+)$/.exec(a);
    const next = argv[i + 1];
    if (m && options[m[1]!]?.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** parseArgs' error as one line that names the flag and the fix. */
function usageErrorOf(e: unknown, spec: CommandSpec, options: Options): UsageError {
  const code = (e as { code?: string }).code;
  const msg = (e as Error).message;
  const help = `run "${commandOf(spec)} --help" for the flags`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(msg)?.[1] ?? msg;
    const name = flag.replace(/^-+/, '').split('=')[0]!;
    const near = didYouMean(
      name,
      Object.keys(options).filter((k) => k !== 'help'),
    );
    return new UsageError(`unknown flag ${flag}${near ? `: did you mean --${near}?` : ` (${help})`}`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /'(-[^' ]+)/.exec(msg)?.[1] ?? '';
    if (/does not take an argument/.test(msg)) return new UsageError(`${flag} takes no value`);
    return new UsageError(`${flag} needs a value (${help})`);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(msg)?.[1] ?? '';
    return new UsageError(`unexpected argument "${arg}" (${help})`);
  }
  return new UsageError(`${msg.split('\n')[0]} (${help})`);
}

/**
 * Parses argv strictly. Returns null when --help was asked (help already printed to stdout).
 * Unknown flags and missing values throw a one-line UsageError naming them.
 */
export function parseCommand(
  spec: CommandSpec,
  argv: string[],
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } | null {
  const options: Options = { ...spec.options, help: { type: 'boolean', short: 'h' } };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals: spec.allowPositionals ?? false, strict: true });
  } catch (e) {
    throw usageErrorOf(e, spec, options);
  }
  if (parsed.values.help) {
    process.stdout.write(`${helpText(spec)}\n`);
    return null;
  }
  return { values: parsed.values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: parsed.positionals };
}

/** A wrong count of positional arguments, in one line: what was expected, what came, and the usage. */
export function positionalError(what: string, got: number, spec: CommandSpec): UsageError {
  return new UsageError(`expected ${what}, got ${got} (usage: ${spec.usage})`);
}

/**
 * Reads a flag by the rule of the option it sets (its zod field: integer in [min, max], one of a
 * list, …), so the flag and the option share their bounds. Undefined when the flag is absent.
 */
export function optionFlag(values: Record<string, unknown>, name: string, field: z.ZodType): unknown {
  const raw = values[name];
  if (raw === undefined) return undefined;
  try {
    return parseFlagText(`--${name}`, String(raw), field);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Reads a flag as an integer within [min, max]; undefined -> `def` (or throws if required). */
export function intFlag(values: Record<string, unknown>, name: string, def: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = values[name];
  if (raw === undefined) {
    if (def === undefined) throw new UsageError(`--${name} is required`);
    return def;
  }
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw.trim())) throw new UsageError(`--${name} must be an integer, got "${String(raw)}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${raw}`);
  return n;
}

/** Reads a flag as a finite number within [min, max]. */
export function numFlag(values: Record<string, unknown>, name: string, def: number | undefined, min = 0, max = Number.MAX_VALUE): number {
  const raw = values[name];
  if (raw === undefined) {
    if (def === undefined) throw new UsageError(`--${name} is required`);
    return def;
  }
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number between ${min} and ${max}, got "${String(raw)}"`);
  return n;
}

/** Reads a string flag, optionally restricted to choices. */
export function strFlag(values: Record<string, unknown>, name: string, def: string | undefined, choices?: readonly string[]): string {
  const raw = values[name];
  if (raw === undefined) {
    if (def === undefined) throw new UsageError(`--${name} is required`);
    return def;
  }
  if (typeof raw !== 'string' || raw === '') throw new UsageError(`--${name} needs a value`);
  if (choices && !choices.includes(raw)) {
    const near = didYouMean(raw, choices);
    throw new UsageError(`--${name} must be one of ${choices.join('|')}, got "${raw}"${near ? `: did you mean ${near}?` : ''}`);
  }
  return raw;
}

/**
 * Checks, before any work, that the directory `path` (given with `flag`) exists and is writable, or
 * can be created: its nearest existing ancestor is a writable directory. Returns the absolute path;
 * throws a one-line UsageError naming the flag otherwise. Creates nothing.
 */
export function creatableDir(flag: string, path: string): string {
  const dir = resolve(path);
  let p = dir;
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UsageError(`${flag} ${fsProblem(e, dir, 'create')}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`${flag} ${dir}: ${p === dir ? 'is a file, not a directory' : `${p} is a file, not a directory`}`);
      try {
        accessSync(p, constants.W_OK | constants.X_OK);
      } catch (e) {
        throw new UsageError(`${flag} ${fsProblem(e, dir, 'create')}`);
      }
      return dir;
    }
    const up = dirname(p);
    if (up === p) return dir;
    p = up;
  }
}
