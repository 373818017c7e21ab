/**
 * `wami-bench merge`: joins the results of a fleet's segments (`fleet --segment I/N`, one per host)
 * into one FleetResult, losslessly (clients/merge.ts), and checks the fleet's thresholds on the whole.
 */
import { resolve } from 'node:path';
import { mergeSegments } from '../../clients/merge.js';
import { UsageError } from '../../model/errors.js';
import { DEFAULT_FLEET_THRESHOLDS, fleetThresholds, type ParsedThreshold } from '../../scenarios/thresholds.js';
import { checkWritablePlace } from '../../servers/common/db.js';
import { parseCommand, strFlag, type CommandSpec } from '../args.js';
import { finishFleetResult } from '../fleet-output.js';
import { readSegmentFile, writeAtomically } from '../segments.js';

const spec: CommandSpec = {
  usage: 'wami-bench merge SEGMENT.json… --out FLEET.json [--ledger FILE] [--threshold EXPR …]',
  summary:
    'Merges the results of the N segments of one fleet (each written by `wami-bench fleet --segment I/N`, on any host) into the result ' +
    'of the whole fleet: HDR histograms merged (never averaged), sockets, updates, errors and delivery accounting added (a segment holds ' +
    "whole boards, so its accounting is complete), the time series aligned by wall second, the worst segment's status (the saturation " +
    "guard's verdict is each host's), and the ledgers concatenated for the audit (--ledger). The merged result says which segment ran where.\n\n" +
    'Refused, with one line and exit 2: a file that is not a segment result, overlapping or missing segments, segments of different N, ' +
    `mixed scenarios, mixed seeds. Thresholds as for \`wami-bench fleet\` (default ${DEFAULT_FLEET_THRESHOLDS.join(', ')}).\n\n` +
    "Exit status: 0 ok and every threshold met; 3 a threshold failed or the merged status is invalid (a segment's guard, or segments that did not start together); " +
    '1 a segment errored; 2 bad input.',
  flagHelp: [
    '--out FILE          write the merged FleetResult JSON there (default: stdout)',
    "--ledger FILE       also write the whole fleet's ledger (for the audit)",
    "--threshold 'EXPR'  a threshold like 'fanoutMs.p99 < 250', repeatable (defaults above)",
  ],
  options: { out: { type: 'string' }, ledger: { type: 'string' }, threshold: { type: 'string', multiple: true } },
  allowPositionals: true,
};

function writable(flag: string, path: string): string {
  const f = resolve(path);
  try {
    checkWritablePlace(f);
  } catch (e) {
    throw new UsageError(`${flag} ${(e as Error).message}`);
  }
  return f;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  if (p.positionals.length === 0) throw new UsageError(`give the segment files to merge (usage: ${spec.usage})`);
  const out = p.values.out !== undefined ? writable('--out', strFlag(p.values, 'out', undefined)) : null;
  const ledgerFile = p.values.ledger !== undefined ? writable('--ledger', strFlag(p.values, 'ledger', undefined)) : null;
  let thresholds: ParsedThreshold[];
  try {
    thresholds = fleetThresholds((p.values.threshold as string[] | undefined) ?? []);
  } catch (e) {
    throw new UsageError(`--threshold: ${(e as Error).message}`);
  }
  const parts = p.positionals.map((f) => readSegmentFile(resolve(f)));
  const { result, ledger } = mergeSegments(parts);
  if (ledgerFile) {
    writeAtomically(ledgerFile, JSON.stringify(ledger));
    result.ledgerFile = ledgerFile;
  }
  return finishFleetResult(result, thresholds, out, `merge of ${parts.length} segments`);
}
