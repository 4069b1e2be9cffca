/**
 * profile:overhead — where the coordinator's CPU goes on the per-delta path: runs bench:overhead's
 * relay load (Node `ws` tabs, streaming HTTP clients) through `wrangler dev` with its inspector
 * open, takes a V8 CPU profile of the worker's isolate (Worker and Region object share it) over
 * the Chrome DevTools protocol, and prints the functions with the most self time, and the
 * source files by self time. A diagnostic, not a benchmark: it runs one phase and exits.
 *
 * Our code's lines are named by source file: the script keeps a copy of wrangler dev's bundle
 * while it runs and maps each sampled line to the `// edge/...` marker esbuild writes above every
 * module. Besides the self-time tables it prints the isolate's busy time (every sample but idle)
 * per request and per token frame, and our functions by inclusive time (a function's own samples
 * and those of everything it called), so a cut can be compared run against run.
 *
 *   node scripts/sim/run-ts.mjs scripts/profile-overhead.ts [--streams 10] [--tokens 100]
 *        [--frame-ms 10] [--top 30] [--out profile.cpuprofile] [--local-observability] [--help]
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import WebSocket from "ws";
import { freePort } from "../test/support/wrangler-dev.js";
import { numberFlag, printTable, readFlags } from "./sim/flags.js";
import { CoordinatorTab } from "./overhead/bench-tab.js";
import { coordinatorAnswer } from "./overhead/clients.js";

const flags = readFlags(process.argv.slice(2));
if (flags.has("help")) {
  console.log(`profile:overhead — a V8 CPU profile of the coordinator's isolate under bench:overhead's relay load

  --streams N    concurrent streams, one tab each (10; at most 100)
  --tokens N     token frames per answer (100; at most 4000): 2 shows the per-request cost
  --frame-ms N   ms between a tab's frames (10)
  --top N        rows per table (30)
  --local-observability  keep wrangler dev's local trace collector on (off by default)
  --out FILE     also save the .cpuprofile (open it in Chrome DevTools) and FILE.bundle.js

Prints: busy ms of the isolate per burst, per request and per frame; functions and files by self
time; our own functions (edge/, shared/) by self and by inclusive time.`);
  process.exit(0);
}
const streams = numberFlag(flags, "streams", 10);
const tokens = numberFlag(flags, "tokens", 100);
const frameMs = numberFlag(flags, "frame-ms", 10);
const top = numberFlag(flags, "top", 30);
if (streams > 100 || tokens > 4000) throw new Error("bounded: at most 100 streams, 4000 tokens");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const root = resolve(".");
mkdirSync(resolve(root, "dist"), { recursive: true });
const [port, inspectorPort] = [await freePort(), await freePort()];
const vars: Record<string, string> = {
  ALLOW_LOCATION_HEADER: "true",
  MAX_NODES_PER_IP: String(streams * 2 + 10),
  // Simulated tabs all connect from 127.0.0.1: no reconnect limit for the address here.
  TAB_CONNECTS_PER_MIN: "1000000",
  TAB_FRAMES_PER_S: "5000",
  TAB_FRAME_BURST: "10000",
  ANONYMOUS_TIER: "on",
  ANONYMOUS_RPM: "10000000",
  ANONYMOUS_CONCURRENT: "1000000",
  TRUST: "off",
};
const args = ["dev", "--ip", "127.0.0.1", "--port", String(port)];
args.push("--inspector-port", String(inspectorPort));
args.push("--persist-to", mkdtempSync(join(tmpdir(), "tabgrid-profile-")));
for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
const child = spawn(join(root, "node_modules/.bin/wrangler"), args, {
  cwd: root,
  detached: true,
  stdio: ["ignore", "pipe", "pipe"],
  env: {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    NO_COLOR: "1",
    // wrangler dev's local trace collector (a span per SQLite statement, socket message, RPC call)
    // runs in the same workerd; Cloudflare has none (bench-overhead.ts says more).
    ...(flags.has("local-observability") ? {} : { X_LOCAL_OBSERVABILITY: "false" }),
  },
});
let out = "";
child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
const origin = `http://127.0.0.1:${port}`;
const tabs: CoordinatorTab[] = [];
try {
  await waitReady();
  const bundleLines = readBundle();
  const wsUrl = `${origin.replace(/^http/, "ws")}/v1/nodes/connect`;
  for (let i = 0; i < streams; i++) tabs.push(new CoordinatorTab(wsUrl, 7, i));
  await Promise.all(tabs.map((t) => t.connect()));
  let index = 0;
  const run = async (plan: { tokens: number; frameMs: number }) =>
    Promise.all(
      Array.from({ length: streams }, () => coordinatorAnswer(origin, index++, plan, 60_000)),
    );
  await run({ tokens: 10, frameMs: 5 });
  const inspector = await openInspector();
  await inspector.call("Profiler.enable");
  await inspector.call("Profiler.setSamplingInterval", { interval: 200 });
  await inspector.call("Profiler.start");
  const t0 = Date.now();
  const answers = await run({ tokens, frameMs });
  const wall = Date.now() - t0;
  const { profile } = (await inspector.call("Profiler.stop")) as { profile: Profile };
  inspector.close();
  const frames = answers.reduce((n, a) => n + a.tokenAt.length, 0);
  console.log(
    `${streams} streams × ${tokens} tokens every ${frameMs} ms: ${frames} frames in ${wall} ms ` +
      `(${((frames * 1000) / wall).toFixed(0)} frames/s), ok ${answers.filter((a) => a.ok).length}`,
  );
  const ttft = answers.map((a) => (a.tokenAt[0] ?? NaN) - a.sentAt).sort((a, b) => a - b);
  console.log(`time to first token, ms: ${ttft.map((t) => t.toFixed(0)).join(" ")}`);
  if (answers.some((a) => !a.ok)) {
    console.log(
      `failed: ${answers.find((a) => !a.ok)!.error}\nwrangler said:\n${out.slice(-3000)}`,
    );
  }
  if (flags.get("out")) {
    writeFileSync(flags.get("out")!, JSON.stringify(profile));
    // The bundle the profile's line numbers point into.
    writeFileSync(`${flags.get("out")!}.bundle.js`, bundleLines.join("\n"));
  }
  summarise(profile, frames, streams, sourceOfLine(bundleLines));
} finally {
  for (const t of tabs) t.close();
  if (child.pid) process.kill(-child.pid, "SIGTERM");
}

function summarise(
  profile: Profile,
  frames: number,
  requests: number,
  source: (line: number) => string,
): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = (
      url === "index.js" ? source(lineNumber) : url.split("/").slice(-2).join("/")
    ).replace(/^.*(node_modules\/)/, "$1");
    return {
      key: `${functionName || "(anonymous)"} ${file || "(native)"}:${lineNumber + 1}`,
      file,
    };
  };
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const fnTime = new Map<string, number>();
  const fileTime = new Map<string, number>();
  const ourSelf = new Map<string, number>();
  const ourInclusive = new Map<string, number>();
  const nativeByCaller = new Map<string, number>();
  let idle = 0;
  const ours = (file: string) => /^(edge|shared)\//.test(file);
  for (const [id, us] of self) {
    const { key, file } = name(id);
    if (byId.get(id)!.callFrame.functionName === "(idle)") idle += us;
    fnTime.set(key, (fnTime.get(key) ?? 0) + us);
    fileTime.set(file || "(native)", (fileTime.get(file || "(native)") ?? 0) + us);
    if (ours(file)) ourSelf.set(key, (ourSelf.get(key) ?? 0) + us);
    // Inclusive: every distinct function of ours on the sampled stack gets the sample once.
    const seen = new Set<string>();
    let caller = "";
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = name(n);
      if (ours(f.file) && !seen.has(f.key)) {
        if (!caller) caller = f.key;
        seen.add(f.key);
        ourInclusive.set(f.key, (ourInclusive.get(f.key) ?? 0) + us);
      }
    }
    // A runtime call (SQLite's exec, a socket's send, JSON) charged to the code of ours that made it.
    const leaf = byId.get(id)!.callFrame;
    if (!leaf.url && caller && !leaf.functionName.startsWith("(")) {
      const k = `${leaf.functionName} ← ${caller}`;
      nativeByCaller.set(k, (nativeByCaller.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  console.log(
    `isolate busy (all samples but idle): ${(busy / 1000).toFixed(1)} ms over ${requests} ` +
      `requests and ${frames} frames = ${(busy / 1000 / requests).toFixed(2)} ms per request, ` +
      `${(busy / 1000 / frames).toFixed(2)} ms per frame (the profiler inflates every figure)`,
  );
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => [
        k.slice(0, 100),
        (us / 1000).toFixed(1),
        ((100 * us) / busy).toFixed(1) + "%",
        (us / requests).toFixed(0),
        (us / frames).toFixed(0),
      ]);
  const cols = ["ms", "of busy", "µs/request", "µs/frame"];
  printTable(["function (self time)", ...cols], rows(fnTime));
  console.log("");
  printTable(["file (self time)", ...cols], rows(fileTime));
  console.log("");
  printTable(["our function (self time)", ...cols], rows(ourSelf));
  console.log("");
  printTable(["our function (inclusive time)", ...cols], rows(ourInclusive));
  console.log("");
  printTable(["runtime call ← our nearest caller (self time)", ...cols], rows(nativeByCaller));
}

/** wrangler dev's bundle, read while it runs (it deletes its temporary folder on exit). */
function readBundle(): string[] {
  const dir = resolve(root, ".wrangler/tmp");
  if (!existsSync(dir)) return [];
  const bundles = readdirSync(dir)
    .map((d) => join(dir, d, "index.js"))
    .filter((f) => existsSync(f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return bundles[0] ? readFileSync(bundles[0], "utf8").split("\n") : [];
}

/** Source file of a 0-based bundle line: the nearest `// path.ts` module marker above it. */
function sourceOfLine(lines: string[]): (line: number) => string {
  const marks: Array<[number, string]> = [];
  lines.forEach((l, i) => {
    const m = /^\/\/ ((?:\.\.\/)*[\w@.\/-]+\.[cm]?[jt]sx?)$/.exec(l);
    if (m) marks.push([i, m[1]!.replace(/^(\.\.\/)+/, "")]);
  });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "index.js";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]![0] <= line) {
        found = marks[mid]![1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

async function waitReady(): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${origin}/v1/models`)).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev not ready:\n${out}`);
}

async function openInspector() {
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{
    id: string;
    title?: string;
    webSocketDebuggerUrl: string;
  }>;
  console.log(`inspector targets: ${list.map((t) => t.title ?? t.id).join(", ")}`);
  const target = list.find((t) => /tabgrid/i.test(t.title ?? "")) ?? list[0]!;
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => ws.once("open", r).once("error", j));
  let next = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.on("message", (d) => {
    const msg = JSON.parse(d.toString()) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  });
  return {
    call: (method: string, params: object = {}) =>
      new Promise<unknown>((res) => {
        const id = ++next;
        waiting.set(id, res);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}
