#!/usr/bin/env node
// Joins the result.json files of single-repeat runs of one scenario (the CI gate runs HEAD and BASE
// in turns, HEAD BASE HEAD BASE …, one repeat each, so both sides see the same drift of the machine)
// into one result.json whose runs are repeats 1..N, for `wami-bench compare`.
// Usage: node .ci/merge-repeats.mjs OUT.json IN1.json IN2.json …
// Exit 2 (one line) when an input is missing, unreadable or of another scenario than the first.
// The first file gives the run id, environment and scenario; the status is the worst of the inputs
// (errored > invalid > ok) and the reasons are all of them, each prefixed by its repeat.
import { readFileSync, writeFileSync } from 'node:fs';

const [out, ...inputs] = process.argv.slice(2);
const fail = (msg) => {
  console.error(`merge-repeats: ${msg}`);
  process.exit(2);
};
if (!out || inputs.length === 0) fail('usage: node .ci/merge-repeats.mjs OUT.json IN1.json IN2.json …');
const files = inputs.map((f) => {
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    return fail(`${f}: ${e instanceof Error ? e.message : String(e)}`);
  }
});
const first = files[0];
for (const [i, r] of files.entries()) {
  if (r?.scenario?.hash !== first?.scenario?.hash || r?.schemaVersion !== first?.schemaVersion)
    fail(`${inputs[i]}: scenario ${r?.scenario?.name}/${r?.scenario?.hash} schema ${r?.schemaVersion} differs from ${inputs[0]}`);
}
const rank = { ok: 0, invalid: 1, errored: 2 };
const merged = {
  ...first,
  status: files.map((r) => r.status).reduce((a, b) => ((rank[b] ?? 2) > (rank[a] ?? 2) ? b : a), 'ok'),
  reasons: files.flatMap((r, i) => (r.reasons ?? []).map((x) => `repeat ${i + 1}: ${x}`)),
  runs: files.flatMap((r, i) => (r.runs ?? []).map((run) => ({ ...run, repeat: i + 1 }))),
  startedAtIso: first.startedAtIso,
  finishedAtIso: files[files.length - 1].finishedAtIso,
};
writeFileSync(out, `${JSON.stringify(merged, null, 2)}\n`);
console.log(`merge-repeats: ${merged.runs.length} runs from ${files.length} results -> ${out} (status ${merged.status})`);
