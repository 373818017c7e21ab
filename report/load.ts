/**
 * Reads and checks a result.json before the report, the exports or the comparison touch it, against
 * the result schema the runner writes with (model/result.ts), so a missing, garbled or newer
 * file is refused with a message that names the file and the field. Extra keys are kept.
 */
import { readFile } from 'node:fs/promises';
import { fsProblem, UsageError } from '../model/errors.js';
import { RESULT_SCHEMA_VERSION, ResultFileSchema, type ResultFile } from '../model/result.js';

/** The file cannot be used: missing, not JSON, another schema version, or a field of the wrong shape (bad input: exit 2). */
export class ResultLoadError extends UsageError {
  override name = 'ResultLoadError';
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

/** Checks parsed JSON against the result shape; throws ResultLoadError naming up to 5 bad fields. */
export function validateResult(data: unknown, file = '<input>'): ResultFile {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new ResultLoadError(`${file}: not a wami-bench result (expected a JSON object)`, file);
  const version = (data as { schemaVersion?: unknown }).schemaVersion;
  if (version !== RESULT_SCHEMA_VERSION) {
    const got = version === undefined ? 'no schemaVersion' : `schemaVersion ${JSON.stringify(version)}`;
    throw new ResultLoadError(`${file}: ${got}; this wami-bench reads result files of schemaVersion ${RESULT_SCHEMA_VERSION}`, file);
  }
  const parsed = ResultFileSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const lines = issues.slice(0, 5).map(
      (i) =>
        `  ${
          i.path.length
            ? i.path
                .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
                .join('')
                .replace(/^\./, '')
            : '(root)'
        }: ${i.message}`,
    );
    if (issues.length > 5) lines.push(`  … and ${issues.length - 5} more`);
    throw new ResultLoadError(`${file}: not a valid result file:\n${lines.join('\n')}`, file);
  }
  // The original object, not zod's output: keys the schema does not know (newer optional fields) stay.
  return data as ResultFile;
}

/** Reads and checks a result.json; throws ResultLoadError with a message fit for the user. */
export async function loadResult(file: string): Promise<ResultFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ResultLoadError(fsProblem(e, file, 'read'), file);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultLoadError(`${file}: not valid JSON (${(e as Error).message})`, file);
  }
  return validateResult(data, file);
}
