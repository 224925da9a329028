/**
 * A real redis-server (Debian's package) for tests: loopback only, a free port,
 * a temp working dir, no persistence, ended by pid after the test. Nothing
 * stands in for Redis.
 */
import { onCleanup, tempDir } from "../helpers.ts";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** Attempts at a free port: another process may take the probed one before redis binds it. */
const PORT_ATTEMPTS = 5;
/** How long redis-server gets to print "Ready to accept connections". */
const READY_TIMEOUT_MS = 10_000;

export interface TestRedis {
  url: string;
  port: number;
  pid: number;
  /** Its working dir: where SAVE writes the dump a restart on the same port loads. */
  dir: string;
  stop(): Promise<void>;
}

/** A port the kernel just handed out on 127.0.0.1 and took back: free unless someone races for it. */
export function probeFreePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Starts redis-server; the cleanup after the test kills it by pid. */
export async function startRedis(): Promise<TestRedis> {
  const redis = await launchRedis(tempDir("agentgate-redis-"));
  onCleanup(redis.stop);
  return redis;
}

/** Starts redis-server in `dir` on a free loopback port, or on `port` (a restart), (the bench uses it too); the caller stops it. */
export async function launchRedis(dir: string, fixedPort?: number): Promise<TestRedis> {
  let lastError = "";
  const attempts = fixedPort === undefined ? PORT_ATTEMPTS : 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = fixedPort ?? probeFreePort();
    const proc = Bun.spawn(
      [REDIS_SERVER, "--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--logfile", ""],
      { cwd: dir, stdout: "pipe", stderr: "pipe" },
    );
    const stop = async () => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await proc.exited;
    };
    const ready = await waitForLine(proc.stdout, "Ready to accept connections", READY_TIMEOUT_MS);
    if (ready.ok) return { url: `redis://127.0.0.1:${port}`, port, pid: proc.pid, dir, stop };
    lastError = ready.output;
    await stop();
  }
  throw new Error(`redis-server did not start in ${attempts} attempts: ${lastError.slice(-500)}`);
}

/** Reads a child's output until `needle` appears, the stream ends or the deadline passes. */
export async function waitForLine(stream: ReadableStream<Uint8Array>, needle: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let output = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!output.includes(needle)) {
      const left = deadline - Date.now();
      if (left <= 0) return { ok: false, output };
      const next = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
      if (next === undefined || next.done) return { ok: false, output };
      output += decoder.decode(next.value, { stream: true });
    }
    return { ok: true, output };
  } finally {
    reader.releaseLock();
    // Keep draining so the child never blocks on a full pipe.
    void stream.pipeTo(new WritableStream()).catch(() => {});
  }
}

