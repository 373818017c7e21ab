/**
 * Options objects as zod shapes: each option is declared once, with its bounds and default, and the
 * CLI, the scenario schema and the library all read that declaration. This module holds what they
 * share: the flag name of an option, the rule of a field (integer in [min, max], one of a list, …)
 * for messages, the schema of "what was set" (the same fields, no defaults applied), and argv
 * conversion for the spawn of a process. Pure.
 */
import { z } from 'zod';

/** The CLI flag of an option: `flushIntervalMs` -> `--flush-interval-ms`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** What a field accepts, read from its zod schema (defaults and optionality unwrapped). */
export type FieldRule =
  | { type: 'int' | 'number'; min: number; max: number }
  | { type: 'enum'; options: readonly string[] }
  | { type: 'string' }
  | { type: 'boolean' }
  | { type: 'list' }
  | { type: 'other' };

/** The field with its default and optionality taken off. */
export function innerOf(field: z.ZodType): z.ZodType {
  let f: z.ZodType = field;
  for (;;) {
    if (f instanceof z.ZodDefault || f instanceof z.ZodOptional || f instanceof z.ZodNullable) f = f.unwrap() as z.ZodType;
    else return f;
  }
}

export function ruleOf(field: z.ZodType): FieldRule {
  const f = innerOf(field);
  if (f instanceof z.ZodNumber) {
    return { type: f.isInt ? 'int' : 'number', min: f.minValue ?? -Number.MAX_VALUE, max: f.maxValue ?? Number.MAX_VALUE };
  }
  if (f instanceof z.ZodEnum) return { type: 'enum', options: f.options as string[] };
  if (f instanceof z.ZodString) return { type: 'string' };
  if (f instanceof z.ZodBoolean) return { type: 'boolean' };
  if (f instanceof z.ZodArray) return { type: 'list' };
  return { type: 'other' };
}

/** The default of a field, or undefined when it has none. */
export function defaultOf(field: z.ZodType): unknown {
  let f: z.ZodType = field;
  for (;;) {
    if (f instanceof z.ZodDefault) return (f.def as { defaultValue: unknown }).defaultValue;
    if (f instanceof z.ZodOptional || f instanceof z.ZodNullable) f = f.unwrap() as z.ZodType;
    else return undefined;
  }
}

/** "must be an integer between 1 and 64", "must be one of immediate|deferred": the rule in words. */
export function ruleText(rule: FieldRule): string {
  switch (rule.type) {
    case 'int':
      return `must be an integer between ${rule.min} and ${rule.max}`;
    case 'number':
      return `must be a number between ${rule.min} and ${rule.max}`;
    case 'enum':
      return `must be one of ${rule.options.join('|')}`;
    case 'string':
      return 'must be a string';
    case 'boolean':
      return 'must be true or false';
    case 'list':
      return 'must be a list';
    case 'other':
      return 'is not valid';
  }
}

/** A shape's fields made optional with their defaults taken off: the schema of what a user set. */
export type SetShape<T extends z.ZodRawShape> = { [K in keyof T]: z.ZodOptional<z.ZodType<z.output<T[K]>, z.input<T[K]>>> };

/** The strict schema of what was set: the same fields and bounds, every one optional, no default applied. */
export function setSchema<T extends z.ZodRawShape>(shape: T): z.ZodObject<SetShape<T>, z.core.$strict> {
  const out: Record<string, z.ZodType> = {};
  for (const [k, f] of Object.entries(shape)) out[k] = innerOf(f as z.ZodType).optional();
  return z.strictObject(out) as unknown as z.ZodObject<SetShape<T>, z.core.$strict>;
}

/** The flags of the options that were set, in the shape's order: `{ shards: 2 }` -> `['--shards', '2']`. */
export function toArgv(shape: z.ZodRawShape, set: Record<string, unknown>): string[] {
  const argv: string[] = [];
  for (const k of Object.keys(shape)) {
    const v = set[k];
    if (v !== undefined) argv.push(flagOf(k), String(v));
  }
  return argv;
}

/** The parse of one flag's text by its field's rule; throws a message naming the flag. */
export function parseFlagText(flag: string, raw: string, field: z.ZodType): unknown {
  const rule = ruleOf(field);
  switch (rule.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${flag} must be an integer, got "${raw}"`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < rule.min || n > rule.max) throw new Error(`${flag} must be between ${rule.min} and ${rule.max}, got ${raw}`);
      return n;
    }
    case 'number': {
      const n = raw.trim() !== '' ? Number(raw) : Number.NaN;
      if (!Number.isFinite(n) || n < rule.min || n > rule.max) throw new Error(`${flag} must be a number between ${rule.min} and ${rule.max}, got "${raw}"`);
      return n;
    }
    case 'enum':
      if (!rule.options.includes(raw)) throw new Error(`${flag} must be one of ${rule.options.join('|')}, got "${raw}"`);
      return raw;
    case 'boolean':
      if (raw !== 'true' && raw !== 'false') throw new Error(`${flag} must be true or false, got "${raw}"`);
      return raw === 'true';
    default:
      if (raw === '') throw new Error(`${flag} needs a value`);
      return raw;
  }
}

/**
 * Options from an argv list (`--flag value` or `--flag=value`) by a shape: what a recorded variant
 * argv, or a scenario's `flags`, says was set. Throws an Error naming an unknown flag or a bad value.
 */
export function fromArgv(shape: z.ZodRawShape, argv: readonly string[], what: string): Record<string, unknown> {
  const byFlag = new Map(Object.keys(shape).map((k) => [flagOf(k), k]));
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const key = byFlag.get(flag);
    if (!a.startsWith('--') || key === undefined) throw new Error(`${JSON.stringify(a)} is not a flag of ${what} (flags: ${[...byFlag.keys()].join(', ')})`);
    const raw = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new Error(`${flag} needs a value`);
    out[key] = parseFlagText(flag, raw, shape[key] as z.ZodType);
  }
  return out;
}
