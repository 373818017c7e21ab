/**
 * How `wami-bench fleet` and `wami-bench merge` end, said once: the thresholds checked on the
 * result, the JSON written whole (a directory another host polls never sees half a file), one
 * summary line with the reasons, and the exit code.
 */
import type { FleetResult } from '../model/fleet-result.js';
import { EXIT } from '../model/exit-codes.js';
import { evaluateFleetThresholds, thresholdReason, type ParsedThreshold } from '../scenarios/thresholds.js';
import { writeAtomically } from './segments.js';

/** Checks the thresholds (unless errored), writes the JSON to `out` (or stdout), reports on stderr; returns the exit code. */
export function finishFleetResult(result: FleetResult, thresholds: readonly ParsedThreshold[], out: string | null, what: string): number {
  if (result.status !== 'errored') {
    result.thresholds = evaluateFleetThresholds(result, thresholds);
    result.reasons.push(...result.thresholds.filter((t) => !t.pass).map(thresholdReason));
  }
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (out) writeAtomically(out, json);
  else process.stdout.write(json);
  const r = result;
  const lat = r.latency;
  const failed = (r.thresholds ?? []).filter((t) => !t.pass);
  const verdict = failed.length ? ` (measured honestly), FAILED ${failed.length} threshold${failed.length === 1 ? '' : 's'}` : '';
  process.stderr.write(
    `${what} ${r.status}${verdict}: ${r.sockets.reached}/${r.sockets.asked} sockets; ${r.updates.sent} sent, ${r.updates.acked} acked, ` +
      `${r.updates.errored} errored, ${r.updates.unanswered} unanswered; delivery ${r.delivery.received}/${r.delivery.expected} ` +
      `(missing ${r.delivery.missing}, duplicate ${r.delivery.duplicate}, out-of-order ${r.delivery.outOfOrder}, phantom ${r.delivery.phantom}); ` +
      `ack p99 ${lat.ackMs.p99} ms, fanout p99 ${lat.fanoutMs.p99} ms${out ? `; wrote ${out}` : ''}\n`,
  );
  for (const reason of r.reasons) process.stderr.write(`  - ${reason}\n`);
  if (r.status === 'errored') return EXIT.error;
  if (r.status === 'invalid' || failed.length > 0) return EXIT.failed;
  return EXIT.ok;
}
