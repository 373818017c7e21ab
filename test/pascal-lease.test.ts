/**
 * The Pascal server's durable seq lease (servers/pascal/README.md): the contract of
 * test/helpers/lease-contract.ts, which the TypeScript batched server passes too
 * (test/seq-lease.test.ts). Skips, saying why, only where fpc is not installed.
 */
import { pascalSkipReason, startPascal, stopAllPascal } from './helpers/pascal.js';
import { seqLeaseContract } from './helpers/lease-contract.js';

seqLeaseContract('pascal', { skip: pascalSkipReason(), start: (db, flags) => startPascal(db, flags), stopAll: stopAllPascal });
