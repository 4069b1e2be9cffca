// `npm run bench:p2p`: the direct WebRTC path against the coordinator relay, measured in one run.
//
// A contributor tab (the headless frame runtime with the deterministic engine, ~15 ms per token)
// serves jobs to a caller page using the SDK (one client per transport, as a page keeps one; the
// tab keeps its data channel to the caller between jobs). With `transport: "p2p"` every job travels both paths
// at once (the relay stays the durable record), so each character's arrival time is known on both:
// per-token delay is measured against the earlier of the two arrivals, in the same job, on the
// same clock. A relay-only run (transport "relay") is the baseline for time-to-first-token.
// Runs inside a loopback-only network namespace when it can (`unshare -n`, root), like the tests.
//
// Flags: --jobs N (default 10), --words N (tokens per job, default 120). Bundled by esbuild into
// node_modules/.cache/ (two levels below the repo, where the test helpers expect to live).
import { spawnSync } from "node:child_process";
import { buildContributorPage, bundleTestEngineWorker } from "../test/support/build-page.js";
import {
  canUnshareNet,
  grabMedia,
  launchWebRtcChromium,
  loadSdk,
  openFrameTab,
  routeTestEngine,
} from "../test/support/embed-harness.js";
import { startWranglerDev } from "../test/support/wrangler-dev.js";

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? NaN : Number(process.argv[i + 1]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const JOBS = flag("jobs", 10);
const WORDS = flag("words", 120);

if (process.env.TABGRID_NETNS !== "1" && canUnshareNet()) {
  const args = process.argv.slice(2).join(" ");
  const cmd = `ip link set lo up && PATH="$PWD/node_modules/.bin:$PATH" exec env TABGRID_NETNS=1 node node_modules/.cache/bench-p2p.mjs ${args}`;
  const r = spawnSync("unshare", ["-n", "sh", "-c", cmd], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

interface JobRecord {
  ttft: { direct: number | null; relay: number | null };
  /** Per token: arrival time minus the earliest arrival of that token on either path, ms. */
  delay: { direct: number[]; relay: number[] };
  messages: { direct: number; relay: number };
  /** ms from first to last token, per path. */
  span: { direct: number | null; relay: number | null };
  tokens: number;
  firstBy: { relay: number; direct: number };
}

// Build first: wrangler dev reloads (dropping every socket) when dist/ changes under it.
const [, workerBundle] = await Promise.all([buildContributorPage(), bundleTestEngineWorker()]);
const server = await startWranglerDev();
try {
  const browser = await launchWebRtcChromium();
  const ctx = await browser.newContext();
  await routeTestEngine(ctx, workerBundle);
  const coordinator = `http://localhost:${server.port}`;
  await openFrameTab(ctx, coordinator, { withMedia: true });
  const page = await ctx.newPage();
  await page.goto(`${coordinator}/v1/models`);
  const model = (JSON.parse((await page.textContent("body")) ?? "{}") as { data: { id: string }[] })
    .data[0]!.id;
  await grabMedia(page);
  await loadSdk(page);

  const content = Array.from({ length: WORDS }, (_, i) => `t${i}`).join(" ");
  const run = (transport: "p2p" | "relay") =>
    page.evaluate(
      async ({ model, content, transport, words }) => {
        type Sdk = typeof import("../web/sdk/index.js");
        const { Tabgrid } = (window as unknown as { sdk: Sdk }).sdk;
        const arrivals: Array<{
          path: "relay" | "direct";
          offset: number;
          length: number;
          at: number;
        }> = [];
        // One client per transport for the whole run, as a page would keep one.
        const w = window as unknown as {
          clients?: Record<string, InstanceType<typeof Tabgrid>>;
          sink?: (a: (typeof arrivals)[number]) => void;
        };
        w.sink = (a) => arrivals.push(a);
        w.clients ??= {};
        const client = (w.clients[transport] ??= new Tabgrid({
          transport,
          onArrival: (a) => w.sink?.(a),
        }));
        const t0 = performance.now();
        const stream = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content }],
          max_tokens: words + 10,
          stream: true,
        });
        let text = "";
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
        // The relay keeps draining after a direct `done`: wait until it has delivered everything.
        const relayChars = () =>
          arrivals.filter((a) => a.path === "relay").reduce((n, a) => n + a.length, 0);
        const deadline = performance.now() + 5000;
        while (relayChars() < text.length && performance.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        // Token boundaries: the last character of each word.
        const ends: number[] = [];
        for (let i = 0; i < text.length; i++)
          if (i === text.length - 1 || text[i + 1] === " ") ends.push(i);
        const at = (path: "relay" | "direct", ch: number) =>
          arrivals.find((a) => a.path === path && a.offset <= ch && ch < a.offset + a.length)?.at ??
          null;
        const per = ends.map((ch) => ({ direct: at("direct", ch), relay: at("relay", ch) }));
        return { t0, per, arrivals, tokens: ends.length, firstBy: stream.stats.firstBy };
      },
      { model, content, transport, words: WORDS },
    );

  const records: JobRecord[] = [];
  const relayOnly: number[] = [];
  const relayOnlySpan: number[] = [];
  // One warm-up of each, then alternate so both see the same conditions.
  await run("p2p");
  await run("relay");
  for (let j = 0; j < JOBS; j++) {
    const r = await run("p2p");
    const rec: JobRecord = {
      ttft: { direct: null, relay: null },
      delay: { direct: [], relay: [] },
      messages: {
        direct: r.arrivals.filter((a) => a.path === "direct").length,
        relay: r.arrivals.filter((a) => a.path === "relay").length,
      },
      span: { direct: null, relay: null },
      tokens: r.tokens,
      firstBy: r.firstBy,
    };
    for (const path of ["direct", "relay"] as const) {
      const times = r.per.map((p) => p[path]).filter((t): t is number => t !== null);
      if (times.length) {
        rec.ttft[path] = times[0]! - r.t0;
        rec.span[path] = times.at(-1)! - times[0]!;
      }
    }
    for (const p of r.per) {
      const best = Math.min(p.direct ?? Infinity, p.relay ?? Infinity);
      if (p.direct !== null) rec.delay.direct.push(p.direct - best);
      if (p.relay !== null) rec.delay.relay.push(p.relay - best);
    }
    records.push(rec);
    const b = await run("relay");
    const times = b.per.map((p) => p.relay).filter((t): t is number => t !== null);
    relayOnly.push(times[0]! - b.t0);
    relayOnlySpan.push(times.at(-1)! - times[0]!);
  }
  await browser.close();

  const q = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
  };
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
  const tokens = records.reduce((n, r) => n + r.tokens, 0) / records.length;
  const row = (name: string, ttft: number[], delay: number[], msgs: number[], span: number[]) =>
    `| ${name.padEnd(26)} | ${f(q(ttft, 0.5)).padStart(8)} | ${f(q(delay, 0.5)).padStart(9)} | ${f(q(delay, 0.95)).padStart(9)} | ${f(Math.max(...delay)).padStart(9)} | ${f(msgs.reduce((a, b) => a + b, 0) / msgs.length).padStart(8)} | ${f(tokens / (q(span, 0.5) / 1000)).padStart(10)} |`;
  const pick = <T>(xs: (T | null)[]) => xs.filter((x): x is T => x !== null);
  console.log(
    `\nbench:p2p — ${JOBS} jobs × ${Math.round(tokens)} tokens (deterministic engine, ~15 ms/token), loopback ${process.env.TABGRID_NETNS === "1" ? "netns" : "host"}`,
  );
  console.log(
    "| path                       | TTFT p50 | delay p50 | delay p95 | delay max | msgs/job | tokens/s   |",
  );
  console.log(
    "|----------------------------|----------|-----------|-----------|-----------|----------|------------|",
  );
  console.log(
    row(
      "p2p job: data channel",
      pick(records.map((r) => r.ttft.direct)),
      records.flatMap((r) => r.delay.direct),
      records.map((r) => r.messages.direct),
      pick(records.map((r) => r.span.direct)),
    ),
  );
  console.log(
    row(
      "p2p job: relay (same job)",
      pick(records.map((r) => r.ttft.relay)),
      records.flatMap((r) => r.delay.relay),
      records.map((r) => r.messages.relay),
      pick(records.map((r) => r.span.relay)),
    ),
  );
  console.log(row("relay-only job (baseline)", relayOnly, [NaN], [NaN], relayOnlySpan));
  const firstDirect = records.reduce((n, r) => n + r.firstBy.direct, 0);
  const firstAll = records.reduce((n, r) => n + r.firstBy.direct + r.firstBy.relay, 0);
  console.log(
    `\nTTFT: ms from the request to the first token. delay: per token, ms after the earliest arrival of that token on either path (same job, same clock). tokens/s: tokens / (last − first token) per path. Characters first delivered by the data channel: ${((100 * firstDirect) / firstAll).toFixed(1)}%.`,
  );
} catch (err) {
  console.error(`wrangler dev output (tail):\n${server.output().slice(-3000)}`);
  throw err;
} finally {
  await server.stop();
}
