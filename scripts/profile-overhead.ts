/**
 * profile:overhead — where the coordinator's CPU goes on the per-delta path: runs bench:overhead's
 * relay load (Node `ws` tabs, streaming HTTP clients) through `wrangler dev` with its inspector
 * open, takes a V8 CPU profile of the worker's isolate (Worker and Region object share it) over
 * the Chrome DevTools protocol, and prints the functions with the most self time, and the
 * source files by self time. A diagnostic, not a benchmark: it runs one phase and exits.
 *
 *   node scripts/sim/run-ts.mjs scripts/profile-overhead.ts [--streams 10] [--tokens 100]
 *        [--frame-ms 10] [--top 30] [--out profile.cpuprofile]
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import WebSocket from "ws";
import { freePort } from "../test/support/wrangler-dev.js";
import { numberFlag, printTable, readFlags } from "./sim/flags.js";
import { CoordinatorTab } from "./overhead/bench-tab.js";
import { coordinatorAnswer } from "./overhead/clients.js";

const flags = readFlags(process.argv.slice(2));
const streams = numberFlag(flags, "streams", 10);
const tokens = numberFlag(flags, "tokens", 100);
const frameMs = numberFlag(flags, "frame-ms", 10);
const top = numberFlag(flags, "top", 30);
if (streams > 100 || tokens > 4000) throw new Error("bounded: at most 100 streams, 4000 tokens");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
});
let out = "";
child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
const origin = `http://127.0.0.1:${port}`;
const tabs: CoordinatorTab[] = [];
try {
  await waitReady();
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
  if (flags.get("out")) writeFileSync(flags.get("out")!, JSON.stringify(profile));
  summarise(profile, frames);
} finally {
  for (const t of tabs) t.close();
  if (child.pid) process.kill(-child.pid, "SIGTERM");
}

function summarise(profile: Profile, frames: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const fnTime = new Map<string, number>();
  const fileTime = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.split("/").slice(-2).join("/") || "(native)";
    const key = `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
    fnTime.set(key, (fnTime.get(key) ?? 0) + us);
    fileTime.set(file, (fileTime.get(file) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => [
        k.slice(0, 90),
        (us / 1000).toFixed(1),
        ((100 * us) / total).toFixed(1) + "%",
        (us / frames).toFixed(1),
      ]);
  printTable(["function (self time)", "ms", "share", "µs/frame"], rows(fnTime));
  console.log("");
  printTable(["file (self time)", "ms", "share", "µs/frame"], rows(fileTime));
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
