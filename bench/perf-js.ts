/**
 * `perf script -F comm,ip,sym,dso -i perf.data | bun bench/perf-js.ts <jit dump>`: where a
 * running gateway's CPU time or page faults go, by JavaScript function. bun.exe has no symbols
 * and perf cannot name JIT code, but JSC writes its JIT code map when the server runs with
 * `BUN_JSC_useJITDump=1` (a file `/tmp/jit-<n>-<pid>-<random>`, whose name `perf inject` does not
 * recognize), so this reads that map itself. Each main-thread sample is put under its kind (a
 * syscall by name, a page fault, other kernel work, JIT code, native code) and the two innermost
 * named JavaScript frames on its stack, e.g. `native  publish < #reveal` is time in native code
 * (uWS, JSON.stringify, a Buffer write) called from those functions. Other threads (the thread
 * pool's fsyncs, the allocator's scavenger, the JIT) are totalled by name.
 *
 * Recording, with the server pid from e.g. `pgrep -f "src/main.ts serve"` during `bun bench/ab.ts
 * this:::BUN_JSC_useJITDump=1`: `perf record -e cpu-clock -g -p <pid> -- sleep 10` (or
 * `-e page-faults -c 1`). A reading aid, not a benchmark: no target depends on it.
 */
import { readFileSync } from "node:fs";

interface JitCode {
  start: number;
  end: number;
  name: string;
}

const JIT_CODE_LOAD = 0;

/** The JIT dump's code records (perf's jitdump format: a header, then records of id, size and timestamp). */
function jitCode(file: string): JitCode[] {
  const data = readFileSync(file);
  const code: JitCode[] = [];
  for (let at = data.readUInt32LE(8); at + 16 <= data.length; ) {
    const id = data.readUInt32LE(at);
    const size = data.readUInt32LE(at + 4);
    if (size === 0) break;
    if (id === JIT_CODE_LOAD) {
      const start = Number(data.readBigUInt64LE(at + 32));
      const length = Number(data.readBigUInt64LE(at + 40));
      const nameEnd = data.indexOf(0, at + 56);
      // "JSC-FTL: publish#B3kBVK" → "publish"
      const name = data.toString("utf8", at + 56, nameEnd).replace(/^[^:]*: /, "").replace(/#\w+$/, "");
      code.push({ start, end: start + length, name });
    }
    at += size;
  }
  return code.sort((a, b) => a.start - b.start);
}

function nameAt(code: JitCode[], address: number): string | undefined {
  let lo = 0;
  let hi = code.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (code[mid]!.start <= address) lo = mid + 1;
    else hi = mid - 1;
  }
  const hit = code[hi];
  return hit && address < hit.end ? hit.name : undefined;
}

interface Frame {
  address: number;
  symbol: string;
  kernel: boolean;
}

/** A sample's kind, from its frames innermost first. */
function kindOf(frames: Frame[], code: JitCode[]): string {
  for (const f of frames) {
    const syscall = /__x64_sys_(\w+)/.exec(f.symbol);
    if (syscall) return `sys:${syscall[1]}`;
    if (f.symbol.includes("page_fault")) return "pagefault";
  }
  const leaf = frames[0]!;
  if (leaf.kernel) return "kernel";
  return nameAt(code, leaf.address) ? "jit" : "native";
}

const dump = process.argv[2];
if (!dump) {
  console.error("usage: perf script -F comm,ip,sym,dso -i perf.data | bun bench/perf-js.ts <jit dump file>");
  process.exit(2);
}
const code = jitCode(dump);
const mainThread = new Map<string, number>();
const otherThreads = new Map<string, number>();
let samples = 0;
let comm = "";
let frames: Frame[] = [];

function take(): void {
  if (frames.length === 0) return;
  samples++;
  if (comm !== "bun.exe" && comm !== "bun") otherThreads.set(comm, (otherThreads.get(comm) ?? 0) + 1);
  else {
    const js = frames.map((f) => nameAt(code, f.address)).filter((n): n is string => n !== undefined).slice(0, 2);
    const key = `${kindOf(frames, code).padEnd(16)} ${js.join(" < ") || "-"}`;
    mainThread.set(key, (mainThread.get(key) ?? 0) + 1);
  }
  frames = [];
}

for await (const line of console) {
  if (line.trim() === "") take();
  else if (!/^\s/.test(line)) comm = line.trim().split(/\s+/)[0]!;
  else {
    const [address = "0", symbol = ""] = line.trim().split(/\s+/);
    frames.push({ address: Number.parseInt(address, 16), symbol, kernel: line.includes("kernel") });
  }
}
take();

const percent = (n: number) => `${((100 * n) / samples).toFixed(1).padStart(5)}%`;
const top = (counts: Map<string, number>, n: number) => [...counts].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(`${samples} samples; main thread by kind and innermost JavaScript frames:`);
for (const [key, n] of top(mainThread, 30)) console.log(`${percent(n)}  ${key}`);
console.log("other threads:");
for (const [name, n] of top(otherThreads, 10)) console.log(`${percent(n)}  ${name}`);
