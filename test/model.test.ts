/** The model layer: the committed JSON Schema of result.json is the one generated from the zod schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resultJsonSchema } from '../model/result.js';
import { RESULT_JSON_SCHEMA_FILE } from '../model/schema-file.js';

test('the committed JSON Schema is the one generated from the zod schema', () => {
  assert.deepEqual(JSON.parse(readFileSync(RESULT_JSON_SCHEMA_FILE, 'utf8')), JSON.parse(JSON.stringify(resultJsonSchema())));
});
