// Placeholder during development: replaced by the real command.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('wami-bench serve: not built yet\n');
  return 1;
}
