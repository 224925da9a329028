/**
 * The media baseline: a bare Bun.serve that streams a POST body to a file and
 * serves one file with Bun.file. Loopback only; exits by itself.
 * argv: <dir> <file to serve>
 */
import { join } from "node:path";

const [dir, served] = process.argv.slice(2) as [string, string];
const MAX_LIFETIME_MS = 10 * 60_000;
let n = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  maxRequestBodySize: 1024 * 1024 * 1024,
  async fetch(req) {
    if (req.method === "POST") {
      const size = await Bun.write(join(dir, `upload-${n++}`), req);
      return Response.json({ size });
    }
    return new Response(Bun.file(served));
  },
});
process.stdout.write(`${server.port}\n`);
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
