/**
 * A child process that owns one chat's lease, for the fencing test: it acquires
 * the lease, appends seq 1, says "held <epoch>", then every 50 ms renews and
 * appends the next seq, printing "appended <seq>" or "fenced <seq>" and exiting
 * after the first refusal. Paused (SIGSTOP) past its TTL, it resumes believing
 * it owns the chat: the fence must refuse it.
 * Usage: bun lease-holder.ts <redis_url> <chat_id> <ttl_ms>
 */
import { RedisClient } from "bun";
import { ClusterEventLog } from "../../src/cluster/event-log.ts";
import { ClusterKeys } from "../../src/cluster/keys.ts";
import { ChatLeases } from "../../src/cluster/lease.ts";
import { FencedError } from "../../src/cluster/lua.ts";

const [url, chatId, ttl] = process.argv.slice(2) as [string, string, string];
const redis = new RedisClient(url);
const keys = new ClusterKeys("test:");
const leases = new ChatLeases(redis, keys, "child", Number(ttl), 1000);
const log = new ClusterEventLog(redis, keys, 1000);
const frame = (seq: number) => JSON.stringify({ event: "message", seq, from: "child" });

const fence = await leases.acquire(chatId);
if (!fence) throw new Error("lease already held");
await log.append(fence, [{ seq: 1, stored: frame(1), frame: frame(1) }]);
console.log(`held ${fence.epoch}`);
let seq = 2;
for (let round = 0; round < 400; round++) {
  await Bun.sleep(50);
  const renewed = await leases.renew(fence);
  try {
    await log.append(fence, [{ seq, stored: frame(seq), frame: frame(seq) }]);
    console.log(`appended ${seq} renewed=${renewed}`);
    seq++;
  } catch (e) {
    if (!(e instanceof FencedError)) throw e;
    console.log(`fenced ${seq} renewed=${renewed}`);
    break;
  }
}
redis.close();
