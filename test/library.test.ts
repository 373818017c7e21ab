/**
 * The library as a user scripts it: the package imported by its own name ('wami-bench', through
 * package.json `exports`), a tiny scenario defined, run through the API with hooks and events, its
 * result loaded back and validated, reported and compared. The library never exits the process
 * and installs no signal handler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from 'wami-bench';

test('the package by its name: a tiny scenario through runScenario, hooks and events heard, the result loaded, reported, compared', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-lib-'));
  try {
    const input = lib.defineScenario({
      name: 'lib-tiny',
      description: 'the library test',
      variants: [{ name: 'batched', kind: 'batched', options: { flushIntervalMs: 50 } }],
      seed: { boards: 2, cardsPerBoard: 5 },
      users: { perBoard: 5 },
      load: { updatesPerUserPerMin: 60 },
      stages: [{ connections: 10, durationSec: 1 }],
      warmupSec: 0,
      fleet: { drainSec: 2, guard: { lagMsP99: 5000, cpuPct: 1000, eventLoopDelayMsP99: 5000 } },
      thresholds: ['audit.lostAcked == 0'],
    });
    const scenario = lib.validateScenario(input, 'inline');
    const calls = { serverStarted: 0, second: 0, beforeStop: 0, logs: [] as string[], status: 0, handlers: [] as string[] };
    const out = await lib.runScenario(scenario, {
      scenarioFile: null,
      outDir: join(dir, 'out'),
      noReport: true,
      onEvent: (e) => (e.type === 'log' ? calls.logs.push(e.message) : calls.status++),
      hooks: {
        serverStarted: (run) => {
          calls.serverStarted++;
          assert.ok(run.server && run.server.port > 0, 'the hook sees the running server');
          // execa's cleanup (signal-exit) listens while children run; the CLI's Ctrl-C handler must not be there.
          calls.handlers.push(
            ...[...process.listeners('SIGINT'), ...process.listeners('SIGTERM')]
              .map(String)
              .filter((f) => /interrupted|process\.exit\(130\)|EXIT\.interrupted/.test(f)),
          );
        },
        second: () => void calls.second++,
        beforeStop: () => void calls.beforeStop++,
      },
    });
    assert.equal(out.outcome, 'ok', out.result.reasons.join('; '));
    assert.equal(lib.exitCodeFor(out.outcome), lib.EXIT.ok);
    assert.equal(out.interrupted, false);
    assert.deepEqual([calls.serverStarted, calls.beforeStop], [1, 1]);
    assert.ok(calls.second >= 1 && calls.status >= 1, `${calls.second} seconds, ${calls.status} status events`);
    assert.ok(
      calls.logs.some((l) => /✔ batched stage 1\/1 \(10 sockets\) repeat 1\/1: ok/.test(l)),
      calls.logs.join('\n'),
    );
    assert.deepEqual(calls.handlers, [], 'no Ctrl-C handler installed by the library');
    const run = out.result.runs[0]!;
    assert.deepEqual(run.variantFlags, ['--flush-interval-ms', '50'], 'typed options became argv at the spawn');
    assert.equal(run.audit?.ok, true);
    assert.ok(run.updates.acked > 0);

    const loaded = await lib.loadResult(out.resultPath);
    assert.equal(lib.ResultFileSchema.safeParse(loaded).success, true);
    const files = await lib.writeReportFiles(loaded, join(dir, 'report'), ['html', 'md']);
    assert.ok(files.html && files.md);
    const c = lib.compareResults(loaded, loaded);
    assert.equal(c.regressions.length, 0);
    await assert.rejects(lib.loadResult(join(dir, 'nope.json')), (e: unknown) => e instanceof lib.UsageError && e instanceof lib.ResultLoadError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
