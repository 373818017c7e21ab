/**
 * Where the committed JSON Schema of result.json lives, and the script that rewrites it:
 * `node dist/model/schema-file.js --write` after a change to model/result.ts (a test fails until then).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resultJsonSchema } from './result.js';

/** model/result.schema.json in the source tree (this module runs from dist/model/). */
export const RESULT_JSON_SCHEMA_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'model', 'result.schema.json');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(RESULT_JSON_SCHEMA_FILE, `${JSON.stringify(resultJsonSchema(), null, 2)}\n`);
  process.stdout.write(`wrote ${RESULT_JSON_SCHEMA_FILE}\n`);
}
