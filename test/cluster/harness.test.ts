/** The cluster tests' real servers: redis-server and PostgreSQL start on loopback, answer, and end by pid. */
import { expect, test } from "bun:test";
import { RedisClient, SQL } from "bun";
import { startPostgres } from "./postgres-server.ts";
import { startRedis } from "./redis-server.ts";

test("redis-server answers on its loopback port and is gone once stopped", async () => {
  const redis = await startRedis();
  const client = new RedisClient(redis.url, { autoReconnect: false });
  expect(await client.send("PING", [])).toBe("PONG");
  client.close();
  await redis.stop();
  expect(() => process.kill(redis.pid, 0)).toThrow();
});

test("PostgreSQL answers SQL on its loopback port and is gone once stopped", async () => {
  const pg = await startPostgres();
  const sql = new SQL(pg.url);
  const [row] = await sql`select 40 + 2 as answer, current_user as who`;
  expect(row).toEqual({ answer: 42, who: "agentgate" });
  await sql.close();
  await pg.stop();
  expect(() => process.kill(pg.pid, 0)).toThrow();
}, 30_000);
