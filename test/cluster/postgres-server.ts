/**
 * A real PostgreSQL (Debian's package) for tests: initdb into a temp dir, the
 * server on a free loopback port with its unix socket in that dir, no fsync
 * (test data), ended by pid after the test. PostgreSQL refuses to run as root:
 * as root, the data dir is handed to the package's `postgres` user and both
 * programs run as it (setpriv execs in place, so the pid is the server's own).
 */
import { chownSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { onCleanup, tempDir } from "../helpers.ts";
import { probeFreePort, waitForLine } from "./redis-server.ts";

/** The newest installed major version's programs. */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no PostgreSQL under ${root}`);
  return join(root, versions[0]!, "bin");
}

const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 20_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** The database user the tests connect as (initdb's superuser). */
const USER = "agentgate";

export interface TestPostgres {
  /** postgres://agentgate@127.0.0.1:<port>/postgres */
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** A fast shutdown (SIGINT: clients are cut off, nothing is left running), for an outage. */
  shutdown(): Promise<void>;
  /** Starts it again (after shutdown) on the same port and data dir: the outage ends. */
  restart(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const dir = tempDir("agentgate-pg-");
  const data = join(dir, "data");
  mkdirSync(data, { mode: 0o700 });
  const asRoot = process.getuid?.() === 0;
  const as = (argv: string[]) => (asRoot ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", ...argv] : argv);
  if (asRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
    chownSync(data, uid, gid);
  }
  const bin = postgresBin();
  const init = Bun.spawnSync(as([join(bin, "initdb"), "-D", data, "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8"]), { stdout: "pipe", stderr: "pipe" });
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  /** The server on `port`, ready, or the reason it is not. */
  const serve = async (port: number) => {
    const proc = Bun.spawn(
      as([join(bin, "postgres"), "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
      { stdout: "pipe", stderr: "pipe" },
    );
    const stop = async () => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await proc.exited;
    };
    const shutdown = async () => {
      proc.kill("SIGINT");
      await Promise.race([proc.exited, Bun.sleep(SHUTDOWN_TIMEOUT_MS)]);
      await stop();
    };
    onCleanup(stop);
    const ready = await waitForLine(proc.stderr, "database system is ready to accept connections", READY_TIMEOUT_MS);
    if (!ready.ok) await stop();
    return { proc, stop, shutdown, ready };
  };
  let lastError = "";
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = probeFreePort();
    let server = await serve(port);
    if (!server.ready.ok) {
      lastError = server.ready.output;
      continue;
    }
    return {
      url: `postgres://${USER}@127.0.0.1:${port}/postgres`,
      get pid() {
        return server.proc.pid;
      },
      stop: () => server.stop(),
      shutdown: () => server.shutdown(),
      async restart() {
        server = await serve(port);
        if (!server.ready.ok) throw new Error(`postgres did not restart: ${server.ready.output.slice(-500)}`);
      },
    };
  }
  throw new Error(`postgres did not start in ${PORT_ATTEMPTS} attempts: ${lastError.slice(-500)}`);
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(Bun.spawnSync(["id", flag, "postgres"]).stdout.toString().trim());
  return { uid: id("-u"), gid: id("-g") };
}
