/**
 * The `external` variant kind: any server that speaks wire protocol v1, started by a command (the
 * Free Pascal server in servers/pascal/, or a user's Redbean, mORMot 2 or Phoenix server).
 *
 * A scenario's variant `{ name, kind: 'external', command: [...], cwd?, env?, ready?, … }`: the
 * command is an argv list (no shell), with placeholders the runner fills for every run:
 * - `{db}`   the run's freshly seeded SQLite file (absolute path). Required, in an argument or an
 *            env value: every run gets a new database and the server must be told where it is;
 * - `{port}` a free TCP port the runner picks (outside the kernel's ephemeral range, so no outgoing
 *            connection can take it before the server binds it). Without `{port}` anywhere, the
 *            server must choose its own port and print a line `listening on ws://HOST:PORT`;
 * - `{host}` the address to listen on, 127.0.0.1.
 * Relative paths (how the runner resolves them: runner/external.ts) and the machine checks (the
 * program exists, is executable) happen at the run's preflight, not here: this module is pure.
 */
import { z } from 'zod';

/** The placeholders the runner fills, by name. */
export const PLACEHOLDERS = ['db', 'port', 'host'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type PlaceholderValues = Record<Placeholder, string>;

/** `{name}`: a placeholder (letters, digits, `_`, `-`); JSON like `{"a":1}` is not one. */
const PLACEHOLDER_RE = /\{([A-Za-z_][\w-]*)\}/g;

/** Options of an external variant (its `options`): what the runner cannot learn from the command. */
export const EXTERNAL_OPTIONS = {
  /**
   * Processes that hold the server's sockets (default 1: one process, like the Pascal server). The
   * preflight bounds each stage's sockets by processes × the per-process file limit.
   */
  processes: z.number().int().min(1).max(4096).default(1),
};

/** How an external server is started, made ready and stopped: the variant's own fields, beside `name` and `kind`. */
export const EXTERNAL_SERVER_SHAPE = {
  /** argv, no shell: `[program, ...args]` with `{db}`, `{port}`, `{host}`. A program with a `/` is a path (relative: against `cwd`); without, it is looked up on PATH. */
  command: z.array(z.string()).min(1, 'command needs at least the program, e.g. ["./server", "--db", "{db}", "--port", "{port}"]'),
  /** Working directory of the server. Relative: against the scenario file's directory (a shipped scenario: the wami-bench package root). Default: that directory. */
  cwd: z.string().min(1).optional(),
  /** Extra environment variables (added to the runner's); values may hold placeholders, e.g. { PORT: '{port}' }. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string()).optional(),
  /** HTTP path polled until it answers 2xx (default /healthz). */
  ready: z
    .string()
    .regex(/^\/[^\s?#]*(\?[^\s#]*)?$/, 'a path starting with "/", e.g. "/healthz"')
    .default('/healthz'),
  /** Longest wait from the start for the port and the ready path, seconds (default 30). */
  readyTimeoutSec: z.number().positive().max(3600).default(30),
  /** After SIGTERM, how long the server may take to exit before SIGKILL, seconds (default 10). A kill is reported and errors the run. */
  stopTimeoutSec: z.number().positive().max(600).default(10),
  /** What to run when the program is missing, shown in the preflight's error (e.g. "npm run build:pascal"). */
  setup: z.string().min(1).optional(),
};

/** Placeholders named in a text, in order of appearance. */
export function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER_RE)].map((m) => m[1]!);
}

/** A text with its placeholders filled; an unknown one is left as written (validation refuses them first). */
export function fillPlaceholders(text: string, values: PlaceholderValues): string {
  return text.replace(PLACEHOLDER_RE, (all, name: string) => ((PLACEHOLDERS as readonly string[]).includes(name) ? values[name as Placeholder] : all));
}

/** The cross-field rules of an external server: each problem with the field it is about. */
export function externalServerProblems(x: {
  command: readonly string[];
  env?: Record<string, string> | undefined;
}): Array<{ path: Array<string | number>; message: string }> {
  const out: Array<{ path: Array<string | number>; message: string }> = [];
  const known = PLACEHOLDERS.map((p) => `{${p}}`).join(', ');
  const program = x.command[0] ?? '';
  if (program.trim() === '') out.push({ path: ['command', 0], message: 'the program (command[0]) is empty' });
  else if (x.command.length === 1 && /\s/.test(program.trim()))
    out.push({
      path: ['command'],
      message: `command is an argv list, not a shell line: write ${JSON.stringify(program.trim().split(/\s+/))} (no shell runs it; for one, use ["sh", "-c", "…"])`,
    });
  else if (placeholdersIn(program).length > 0) out.push({ path: ['command', 0], message: `the program (command[0] "${program}") cannot hold a placeholder` });
  x.command.forEach((arg, i) => {
    for (const p of placeholdersIn(arg))
      if (!(PLACEHOLDERS as readonly string[]).includes(p))
        out.push({ path: ['command', i], message: `unknown placeholder {${p}} (the runner fills ${known})` });
  });
  for (const [k, v] of Object.entries(x.env ?? {}))
    for (const p of placeholdersIn(v))
      if (!(PLACEHOLDERS as readonly string[]).includes(p)) out.push({ path: ['env', k], message: `unknown placeholder {${p}} (the runner fills ${known})` });
  const all = [...x.command.slice(1), ...Object.values(x.env ?? {})];
  if (!all.some((t) => placeholdersIn(t).includes('db')))
    out.push({
      path: ['command'],
      message:
        'the command never passes the database: put {db} in an argument (e.g. "--db", "{db}") or an env value; every run seeds a fresh SQLite file and the server must serve that one',
    });
  return out;
}

export const ExternalServerSchema = z.strictObject(EXTERNAL_SERVER_SHAPE).superRefine((x, ctx) => {
  for (const p of externalServerProblems(x)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
});
/** An external server's fields with their defaults filled in. */
export type ExternalServer = z.output<typeof ExternalServerSchema>;

/** Whether the command (or env) lets the runner choose the port; otherwise the server prints it. */
export function usesPortPlaceholder(x: { command: readonly string[]; env?: Record<string, string> | undefined }): boolean {
  return [...x.command, ...Object.values(x.env ?? {})].some((t) => placeholdersIn(t).includes('port'));
}

/**
 * `listening on ws://HOST:PORT` (what `wami-bench serve` and the Pascal server print; `/ws` and
 * anything after it optional): the port, and the host when it is an IPv4 address.
 */
export const LISTENING_LINE_RE = /listening on wss?:\/\/(\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-fA-F:]+\]|[\w.-]+):(\d{1,5})\b/;

/** The port and host a server printed, or null. `0.0.0.0`, `localhost` and names give host null (use the loopback address). */
export function parseListeningLine(output: string): { host: string | null; port: number } | null {
  const m = LISTENING_LINE_RE.exec(output);
  if (!m) return null;
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) return null;
  const host = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(m[1]!) && m[1] !== '0.0.0.0' ? m[1]! : null;
  return { host, port };
}

/** A command as one line for people: arguments with spaces or quotes are single-quoted. */
export function commandLine(argv: readonly string[]): string {
  return argv.map((a) => (a === '' ? "''" : /^[\w@%+=:,./{}-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}
