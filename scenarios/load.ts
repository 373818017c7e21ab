/**
 * Loading scenarios by name (the shipped ones in scenarios/) or by path (.json, .js, .mjs), validating
 * them, applying CLI overrides, and hashing the resolved result. Every problem is a ScenarioError
 * naming the file and the field; the CLI turns it into exit code 2.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, resolve, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { didYouMean, firstLine, fsProblem, UsageError } from '../model/errors.js';
import { ScenarioSchema, type Scenario } from './schema.js';

export class ScenarioError extends UsageError {
  override name = 'ScenarioError';
}

/** The shipped scenarios, by name. Each is scenarios/<name>.ts with a default export. */
export const BUILTIN_SCENARIOS = [
  'smoke',
  'steady-5k',
  'hot-board',
  'burst',
  'ramp-30k',
  'tls-caddy',
  'mixed-read-write',
  'memory-knobs',
  'crash',
  'slow-consumers',
  'pascal-vs-port',
  'write-ceiling',
  'contention',
] as const;

const HERE = dirname(fileURLToPath(import.meta.url));
/** The wami-bench package root (this file runs compiled from dist/scenarios/). */
export const PACKAGE_ROOT = resolve(HERE, '..', '..');

/**
 * The directory an external variant's relative `cwd` (and, through it, a relative program path) is
 * resolved against: the scenario file's directory; for a shipped scenario, the wami-bench package
 * root (so `servers/pascal/bin/wami-pascal` names the built server); for a scenario given as an
 * object (the library, no file), the current directory.
 */
export function scenarioBaseDir(file: string | null): string {
  if (file === null) return process.cwd();
  const f = resolve(file);
  const builtin = (BUILTIN_SCENARIOS as readonly string[]).some((n) => f === join(HERE, `${n}.js`));
  return builtin ? PACKAGE_ROOT : dirname(f);
}

function formatIssues(source: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => {
    const path = i.path.length
      ? i.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
          .join('')
          .replace(/^\./, '')
      : '(top level)';
    let msg = i.message;
    if (i.code === 'unrecognized_keys') msg = `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    return `  ${path}: ${msg}`;
  });
  return `scenario ${source} is invalid:\n${lines.join('\n')}`;
}

/** Validates a raw scenario object. `source` names the file for messages. */
export function validateScenario(raw: unknown, source: string): Scenario {
  const r = ScenarioSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(formatIssues(source, r.error));
  return r.data;
}

/** Resolves a name or path to a file, or throws naming what was looked for. */
export function resolveScenarioFile(nameOrPath: string): string {
  if ((BUILTIN_SCENARIOS as readonly string[]).includes(nameOrPath)) return join(HERE, `${nameOrPath}.js`);
  const p = resolve(nameOrPath);
  if (existsSync(p)) return p;
  const near = /[/.]/.test(nameOrPath) ? null : didYouMean(nameOrPath, BUILTIN_SCENARIOS);
  throw new ScenarioError(
    `no scenario "${nameOrPath}": ${near ? `did you mean ${near}? (` : ''}not a shipped scenario (${BUILTIN_SCENARIOS.join(', ')}) and no such file${near ? ')' : ''}`,
  );
}

export async function loadScenario(nameOrPath: string): Promise<{ scenario: Scenario; file: string }> {
  const file = resolveScenarioFile(nameOrPath);
  const ext = extname(file);
  let raw: unknown;
  if (ext === '.json') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ScenarioError(`scenario ${fsProblem(e, file, 'read')}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ScenarioError(`scenario ${file} is not valid JSON: ${(e as Error).message}`);
    }
  } else if (ext === '.js' || ext === '.mjs') {
    try {
      accessSync(file, constants.R_OK);
    } catch (e) {
      throw new ScenarioError(`scenario ${fsProblem(e, file, 'read')}`);
    }
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
      raw = mod.default;
    } catch (e) {
      throw new ScenarioError(`scenario ${file} could not be loaded: ${firstLine(e)}`);
    }
    if (raw === undefined) throw new ScenarioError(`scenario ${file} has no default export (export default defineScenario({...}))`);
  } else if (ext === '.ts') {
    throw new ScenarioError(`scenario ${file} is TypeScript: put it in scenarios/ and run "npm run build", or pass its compiled .js, or write it as .json`);
  } else {
    throw new ScenarioError(`scenario ${file}: unsupported extension "${ext}" (use .json, .js or .mjs)`);
  }
  return { scenario: validateScenario(raw, file), file };
}

export interface Overrides {
  connections?: number;
  durationSec?: number;
  repeats?: number;
  warmupSec?: number;
  /** Variant names to keep, in the scenario's order. */
  variants?: string[];
}

/**
 * Applies CLI overrides and re-validates. `--connections` replaces the stages with one stage of that
 * many sockets (the first stage's duration unless `--duration-sec`), growing seed.boards if needed.
 */
export function applyOverrides(s: Scenario, o: Overrides, source: string): Scenario {
  const out: Scenario = structuredClone(s);
  if (o.connections !== undefined) {
    const first = out.stages[0]!;
    out.stages = [{ ...first, connections: o.connections }];
    out.seed.boards = Math.max(out.seed.boards, Math.ceil(o.connections / out.users.perBoard));
  }
  if (o.durationSec !== undefined) out.stages = out.stages.map((st) => ({ ...st, durationSec: o.durationSec! }));
  if (o.repeats !== undefined) out.repeats = o.repeats;
  if (o.warmupSec !== undefined) out.warmupSec = o.warmupSec;
  if (o.variants !== undefined) {
    const known = out.variants.map((v) => v.name);
    const unknown = o.variants.filter((n) => !known.includes(n));
    if (unknown.length)
      throw new ScenarioError(`--variants names ${unknown.map((n) => `"${n}"`).join(', ')}, not in scenario ${s.name} (it has ${known.join(', ')})`);
    out.variants = out.variants.filter((v) => o.variants!.includes(v.name));
  }
  return validateScenario(out, `${source} (with overrides)`);
}

/** Canonical JSON (sorted keys) for hashing. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 of the resolved scenario's canonical JSON, first 16 hex digits. */
export function scenarioHash(s: Scenario): string {
  return createHash('sha256').update(canonical(s)).digest('hex').slice(0, 16);
}
