/**
 * The external variants of a result (servers started by their own command, model/external.ts), as
 * the report names them: the command as the scenario wrote it, with the program resolved to the path
 * that ran, the working directory and where the port came from. Pure.
 */
import { commandLine } from '../model/external.js';
import type { ResultFile, RunRecord } from '../model/result.js';

export interface ExternalCommand {
  variant: string;
  /** One line: the resolved program and the scenario's arguments, placeholders kept ({db}, {port}). */
  command: string;
  cwd: string;
  /** "picked for {port}" or "read from its listening line". */
  port: string;
  /** Extra environment the variant set, as written (placeholders kept), "" when none. */
  env: string;
}

interface ResolvedVariant {
  name?: unknown;
  kind?: unknown;
  command?: unknown;
  env?: unknown;
}

/** The command of one run as a line: the argv as spawned (database path and port filled in). */
export function runCommandLine(r: RunRecord): string | null {
  return r.external ? commandLine(r.external.command) : null;
}

/** Each external variant of the result, in the order of its first run; empty when there is none. */
export function externalCommands(result: ResultFile): ExternalCommand[] {
  const variants = (Array.isArray(result.scenario.resolved.variants) ? result.scenario.resolved.variants : []) as ResolvedVariant[];
  const out: ExternalCommand[] = [];
  for (const r of result.runs) {
    if (!r.external || out.some((x) => x.variant === r.variant)) continue;
    const written = variants.find((v) => v.name === r.variant);
    const args = Array.isArray(written?.command) && written.command.every((a) => typeof a === 'string') ? (written.command as string[]).slice(1) : null;
    const argv = args ? [r.external.command[0] ?? '', ...args] : r.external.command;
    const env =
      written?.env && typeof written.env === 'object'
        ? Object.entries(written.env as Record<string, unknown>)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(' ')
        : '';
    out.push({
      variant: r.variant,
      command: commandLine(argv),
      cwd: r.external.cwd,
      port: r.external.portFrom === 'placeholder' ? 'picked for {port}' : 'read from its listening line',
      env,
    });
  }
  return out;
}

/** "pascal: /x/wami-pascal --db {db} --port {port} (in /x; port picked for {port})" */
export function externalCommandText(c: ExternalCommand): string {
  return `${c.variant}: ${c.env ? `${c.env} ` : ''}${c.command} (in ${c.cwd}; port ${c.port})`;
}
