/** batched `--shards N`: which shard owns a board. Pure; the primary, the shards and their writer threads share it. */

/**
 * The shard owning board `board` of `shards`: (board - 1) mod shards, so the seeded boards 1..B
 * go round-robin (board 1 -> shard 0, board 2 -> shard 1, …). Stable: it depends on nothing else.
 */
export function shardOf(board: number, shards: number): number {
  return (((board - 1) % shards) + shards) % shards;
}
