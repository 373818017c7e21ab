/**
 * Small CLI helpers on top of node:util parseArgs, shared by every command: typed flags, `--help`,
 * and usage errors that name the flag and exit 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { UsageError } from '../model/errors.js';
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

/**
 * Parses argv strictly. Returns null when --help was asked (help already printed to stdout).
 * Unknown flags and missing values throw UsageError naming them.
 */
export function parseCommand(
  spec: CommandSpec,
  argv: string[],
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } | null {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}\n\n${helpText(spec)}`);
  }
  if (parsed.values.help) {
    process.stdout.write(`${helpText(spec)}\n`);
    return null;
  }
  return { values: parsed.values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: parsed.positionals };
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
  if (choices && !choices.includes(raw)) throw new UsageError(`--${name} must be one of ${choices.join('|')}, got "${raw}"`);
  return raw;
}
