/**
 * The sink's process (servers/sink/sink.ts), spawned by runner/fleet-ceiling.ts:
 * `node main.js HOST PORT BOARDS`. Prints `listening on ws://HOST:PORT/ws` like `wami-bench serve`,
 * stops on SIGTERM or SIGINT (exit 0).
 */
import { startSink } from './sink.js';

const [host = '127.0.0.1', port = '0', boards = '1'] = process.argv.slice(2);
const sink = await startSink({ host, port: Number(port), boards: Number(boards) });
process.stdout.write(`sink listening on ws://${sink.host}:${sink.port}/ws\n`);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void sink.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
