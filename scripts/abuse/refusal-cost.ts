/**
 * What one refused request costs the coordinator, by kind (a diagnostic for bench:abuse's
 * unauth-flood phase, not a benchmark): starts `wrangler dev` as bench:abuse does (anonymous tier
 * off), puts one address past its failed-authentication limit, then sends `--n` requests of each
 * kind one after another from that address — a made-up `tg_…` key (`key`), no key (`nokey`), a
 * made-up key with a 2 MB chunked body (`big`) — and prints, per kind, the answers by status and
 * the CPU milliseconds per request of the Worker's own workerd, of the rest of wrangler dev (its
 * proxy worker's workerd and Node process) and of this process, with the wall time per request.
 *
 *   node scripts/sim/run-ts.mjs scripts/abuse/refusal-cost.ts [--n 200] [--past-proxy]
 *        [--kinds key,nokey,big]
 */
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { innerWorkerOrigin } from "../overhead-inner-origin.js";
import { childPids, treeCpuMs } from "../overhead/proc-cpu.js";
import { numberFlag, printTable, readFlags } from "../sim/flags.js";

const flags = readFlags(process.argv.slice(2));
const n = numberFlag(flags, "n", 200);
if (n > 2000) throw new Error("bounded: --n ≤ 2000");
const pastProxy = flags.has("past-proxy");
const kinds = (flags.get("kinds") ?? "key,nokey,big").split(",");
const IP = "203.0.113.3";

mkdirSync(resolve("dist"), { recursive: true });
// Imported by path from the working folder, as bench-abuse.ts does (the module finds wrangler from its own place).
const { startWranglerDev } = (await import(
  pathToFileURL(resolve("test/support/wrangler-dev.ts")).href
)) as typeof import("../../test/support/wrangler-dev.js");
const server = await startWranglerDev({
  vars: { ANONYMOUS_TIER: "off", ADMIN_TOKEN: "refusal-cost-admin-token-0123456789" },
  timeoutMs: 90_000,
});
try {
  const root = childPids("wrangler")[0];
  if (root === undefined) throw new Error("wrangler dev's process was not found");
  const inner = await innerWorkerOrigin(root, server.port);
  if (!inner) throw new Error("the Worker's own workerd was not found");
  const origin = pastProxy ? inner.origin : server.origin;

  const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const key = (i: number) =>
    `tg_${((i * 2654435761) >>> 0).toString(16).padStart(12, "0").slice(-12)}_` +
    Array.from({ length: 43 }, (_, j) => b64[(i * 31 + j * 17) % 64]).join("");
  const small = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] });
  const chunk = new TextEncoder().encode("€".repeat(20_000));
  const big = () => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 2_000_000) return c.close();
        sent += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
  };
  const send = async (kind: string, i: number) => {
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "cf-connecting-ip": IP,
        ...(kind === "nokey" ? {} : { authorization: `Bearer ${key(i)}` }),
      },
      body: kind === "big" ? big() : small,
      ...(kind === "big" ? { duplex: "half" } : {}),
    } as RequestInit);
    await res.arrayBuffer();
    return res.status;
  };
  // Past the limit first (and every code path compiled).
  for (let i = 0; i < 40; i++) await send("key", i);

  const rows: string[][] = [];
  for (const kind of kinds) {
    const statuses: Record<string, number> = {};
    const cpu0 = { all: treeCpuMs(root), worker: treeCpuMs(inner.pid), self: process.cpuUsage() };
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      // A connection the coordinator closed before the whole body was sent counts by its error.
      const s = await send(kind, 1000 + i).catch((e: Error) => {
        const cause = e.cause as { code?: string } | undefined;
        return `failed (${cause?.code ?? e.message})`;
      });
      statuses[s] = (statuses[s] ?? 0) + 1;
    }
    const wall = performance.now() - t0;
    const worker = treeCpuMs(inner.pid) - cpu0.worker;
    const rest = treeCpuMs(root) - cpu0.all - worker;
    const self = process.cpuUsage(cpu0.self);
    const per = (ms: number) => (ms / n).toFixed(2);
    rows.push([
      kind,
      Object.entries(statuses)
        .map(([k, v]) => `${k}: ${v}`)
        .join(", "),
      per(worker),
      per(rest),
      per((self.user + self.system) / 1000),
      per(wall),
    ]);
  }
  console.log(
    `refusal-cost n=${n} ${pastProxy ? "past wrangler's proxy" : "through wrangler dev"} load=${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  printTable(
    [
      "kind",
      "answers",
      "Worker's workerd CPU ms/req",
      "rest of wrangler dev CPU ms/req",
      "this process CPU ms/req",
      "wall ms/req",
    ],
    rows,
  );
} finally {
  await server.stop();
}
