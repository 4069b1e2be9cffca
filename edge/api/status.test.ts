import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import app from "../index.js";
import {
  appEnv,
  chat,
  knownAndNewTabs,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import { failLedgerCalls } from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import type { ModelView, NetworkView, RegionView } from "../../shared/status/status-views.js";

const tabs = useTabs();
const ORIGIN = "http://tabgrid.test";
// Sydney: region `oc`, which no other test file places tabs in.
const SYDNEY = { lat: -33.87, lon: 151.21 };
/** Clients in Sydney too, so that a request waits in region `oc`'s queue. */
const FROM_SYDNEY = { "x-tabgrid-location": `${SYDNEY.lat},${SYDNEY.lon}` };

async function getJson<T>(path: string): Promise<{ res: Response; body: T }> {
  const res = await SELF.fetch(`${ORIGIN}${path}`);
  return { res, body: (await res.json()) as T };
}

/** Poll until `check` passes (regions report to the Directory at most once a second). */
async function until<T>(read: () => Promise<T>, check: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (check(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 150));
  }
}

const models = () => getJson<{ data: ModelView[] }>("/v1/status/models").then((r) => r.body.data);
const regions = () =>
  getJson<{ data: RegionView[] }>("/v1/status/regions").then((r) => r.body.data);

/** Serve one job on `tab`, its first text `delayMs` after it was assigned. */
async function serveOne(tab: ScriptedTab, model: string, delayMs: number): Promise<void> {
  const resP = chat(model, { stream: true }, FROM_SYDNEY);
  const job = await tab.nextJob();
  tab.accept(job);
  await new Promise((r) => setTimeout(r, delayMs));
  tab.delta(job, 0, "hello ");
  tab.delta(job, 1, "there");
  await new Promise((r) => setTimeout(r, 50));
  tab.done(job, "stop", { completion_tokens: 2 });
  expect((await streamText(await resP)).text).toBe("hello there");
}

describe("GET /v1/status*", () => {
  it("shows a connected tab's model, its place rounded to 1°, and is cacheable", async () => {
    await tabs.tab(["status-model-a"], { loc: SYDNEY });
    const list = await until(models, (l) => l.some((m) => m.id === "status-model-a"));
    const m = list.find((x) => x.id === "status-model-a");
    expect(m).toMatchObject({ nodes: 1, idle: 1, queued: 0, eta_s: 0, regions: ["oc"] });

    const { res, body } = await getJson<NetworkView>("/v1/status");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(body.object).toBe("network.status");
    expect(body.tabs).toBeGreaterThanOrEqual(1);
    expect(body.regions).toBeGreaterThanOrEqual(1);
    // -33.87, 151.21 is counted at -34, 151: never the tab's own coordinates.
    const place = body.places.find((p) => p.lat === -34 && p.lon === 151);
    expect(place?.states.idle).toBeGreaterThanOrEqual(1);
    expect(body.places.every((p) => Number.isInteger(p.lat) && Number.isInteger(p.lon))).toBe(true);
  });

  it("counts requests, TTFT quantiles and tokens/s per region and per model", async () => {
    const before = (await regions()).find((r) => r.region === "oc")?.windows["5m"].requests ?? 0;
    const tab = await tabs.tab(["status-model-b"], { loc: SYDNEY });
    for (let i = 0; i < 3; i++) await serveOne(tab, "status-model-b", 300);

    const list = await until(regions, (l) =>
      l.some((r) => r.region === "oc" && r.windows["5m"].requests >= before + 3),
    );
    const oc = list.find((r) => r.region === "oc")!;
    for (const w of ["5m", "1h", "1d"] as const) {
      expect(oc.windows[w].requests).toBeGreaterThanOrEqual(before + 3);
      expect(oc.windows[w].done).toBeGreaterThanOrEqual(3);
    }
    const ttft = oc.windows["5m"].ttft_ms!;
    // The first text left the tab 300 ms after assignment; the TTFT buckets around it are 250-500.
    expect(ttft.p50).toBeGreaterThanOrEqual(250);
    expect(ttft.p50).toBeLessThanOrEqual(ttft.p95);
    expect(ttft.p95).toBeLessThanOrEqual(ttft.p99);
    expect(oc.windows["5m"].tokens_per_s?.p50).toBeGreaterThan(0);

    const m = (
      await until(models, (l) =>
        l.some((x) => x.id === "status-model-b" && x.tokens_per_s !== null),
      )
    ).find((x) => x.id === "status-model-b");
    expect(m?.nodes).toBe(1);
    expect(m?.tokens_per_s).toBeGreaterThan(0);
  }, 15_000);

  it("reports a waiting request in the model's queue with a wait estimate", async () => {
    const tab = await tabs.tab(["status-model-c"], { loc: SYDNEY });
    const first = chat("status-model-c", {}, FROM_SYDNEY);
    const job = await tab.nextJob();
    tab.accept(job);
    tab.delta(job, 0, "o");
    // The tab keeps streaming while the second request waits its turn: a delta every 300 ms holds
    // its lease (LEASE_MS 1.5 s in tests) however long the listing takes on a loaded machine (CI,
    // 2026-12-01: the lease ran out first and both requests failed).
    let seq = 1;
    const streaming = setInterval(() => tab.delta(job, seq++, "."), 300);
    const second = chat("status-model-c", {}, FROM_SYDNEY);
    const list = await until(models, (l) =>
      l.some((x) => x.id === "status-model-c" && x.queued === 1),
    ).finally(() => clearInterval(streaming));
    const m = list.find((x) => x.id === "status-model-c")!;
    expect(m).toMatchObject({ nodes: 1, idle: 0, queued: 1 });
    expect(m.eta_s).toBeGreaterThan(0);
    tab.delta(job, seq++, "ne");
    tab.done(job, "stop");
    tab.serve(await tab.nextJob(), ["two"]);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  }, 15_000);
});

// ---- /metrics -------------------------------------------------------------------------------

const TOKEN = "metrics-token-for-tests-0123";
const withToken = { ...appEnv, METRICS_TOKEN: TOKEN };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line is a HELP, a TYPE
 * or a sample; a sample's family was TYPEd before it; histogram buckets are cumulative and end at
 * +Inf equal to _count. Throws on anything else.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const sampleRe = new RegExp(`^(${name})(?:\\{(.*)\\})? (-?[0-9.e+-]+|\\+Inf|NaN)$`);
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    const meta = line.match(new RegExp(`^# (HELP|TYPE) (${name}) (.+)$`));
    if (meta) {
      if (meta[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(meta[3]!))
          throw new Error(`bad TYPE: ${line}`);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = line.match(sampleRe);
    if (!m) throw new Error(`not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m[2].length) {
        const l = labelRe.exec(m[2]);
        if (!l) throw new Error(`bad labels: ${line}`);
        labels[l[1]!] = l[2]!;
      }
    }
    const family = m[1]!.replace(/_(bucket|sum|count)$/, "");
    if (!types.has(m[1]!) && types.get(family) !== "histogram")
      throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  // Histograms: cumulative buckets ending at +Inf == _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      buckets.reduce((prev, b) => {
        if (b.value < prev) throw new Error(`${family} buckets not cumulative`);
        return b.value;
      }, 0);
      const count = samples.find(
        (x) => x.name === `${family}_count` && JSON.stringify(x.labels) === key,
      );
      expect(buckets.at(-1)?.labels.le).toBe("+Inf");
      expect(count?.value).toBe(buckets.at(-1)?.value);
    }
  }
  return { types, samples };
}

/** The value of the sample named `name` whose labels include `labels`, if any. */
/** One scrape of /metrics with the token, parsed. */
async function scrape(): Promise<{ types: Map<string, string>; samples: Sample[] }> {
  const res = await app.request(
    "/metrics",
    { headers: { authorization: `Bearer ${TOKEN}` } },
    withToken,
  );
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

describe("GET /metrics", () => {
  it("is refused without the token (401), with a wrong one (401), and when unset (403)", async () => {
    expect((await app.request("/metrics", {}, withToken)).status).toBe(401);
    const wrong = { headers: { authorization: "Bearer not-the-token" } };
    expect((await app.request("/metrics", wrong, withToken)).status).toBe(401);
    // The test coordinator has no METRICS_TOKEN configured: the endpoint is off.
    expect((await SELF.fetch(`${ORIGIN}/metrics`)).status).toBe(403);
  });

  it("exposes requests, TTFT histograms, jobs, tabs and queue in the text format", async () => {
    const tab = await tabs.tab(["status-model-d"], { loc: SYDNEY });
    await serveOne(tab, "status-model-d", 100);
    await until(regions, (l) => l.some((r) => r.region === "oc" && r.windows["5m"].done > 0));
    // Requests answered through this app (same isolate) are counted exactly.
    await app.request("/v1/status/models", {}, withToken);
    const res = await app.request(
      "/metrics",
      { headers: { authorization: `Bearer ${TOKEN}` } },
      withToken,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseExposition(await res.text());
    expect(types.get("tabgrid_http_requests_total")).toBe("counter");
    expect(types.get("tabgrid_ttft_seconds")).toBe("histogram");
    const count = (name: string, labels: Record<string, string>) =>
      sampleValue(samples, name, labels);
    expect(
      count("tabgrid_http_requests_total", { route: "/v1/chat/completions", status: "200" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      count("tabgrid_http_requests_total", { route: "/v1/status/models", status: "200" }),
    ).toBeGreaterThanOrEqual(1);
    expect(count("tabgrid_ttft_seconds_count", { region: "oc" })).toBeGreaterThanOrEqual(1);
    expect(count("tabgrid_jobs_total", { region: "oc", outcome: "done" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(count("tabgrid_tabs", { region: "oc", state: "idle" })).toBeGreaterThanOrEqual(1);
    expect(count("tabgrid_queue_depth", { region: "oc" })).toBe(0);
    expect(count("tabgrid_model_tabs", { model: "status-model-d", state: "all" })).toBe(1);
  });

  it("shows a region's credit changes waiting for a ledger that does not answer", async () => {
    const metric = async () => {
      const { types, samples } = await scrape();
      expect(types.get("tabgrid_ledger_waiting_operations")).toBe("gauge");
      return sampleValue(samples, "tabgrid_ledger_waiting_operations", { region: "oc" });
    };
    // A tab with an identity, so its job's credit is a change for the ledger.
    const tab = await tabs.tab(["status-ledger"], { loc: SYDNEY, keys: await newKeyPair() });
    await tab.next("credit.balance");
    const outage = await failLedgerCalls(1_000, () => true, "oc");
    await serveOne(tab, "status-ledger", 0);
    expect(await until(metric, (v) => v === 1, 10_000)).toBe(1);
    outage.end();
  }, 20_000);

  it("counts hedged first tokens — started, won by the second tab, the loser's time — in /v1/status and /metrics", async () => {
    const oc = async () => (await regions()).find((r) => r.region === "oc")?.windows["5m"];
    const before = (await oc()) ?? { hedged: 0, hedge_won: 0, hedge_loser_ms: 0 };
    // A budgeted request goes to the new tab and is hedged on the known one.
    const prompt = "word ".repeat(80);
    const { known, fresh } = await knownAndNewTabs(tabs, "status-hedge", prompt, {
      loc: SYDNEY,
      headers: FROM_SYDNEY,
    });
    const res = chat(
      "status-hedge",
      {
        messages: [{ role: "user", content: prompt }],
        stream: true,
        tabgrid: { latency_budget_ms: 60_000 },
      },
      FROM_SYDNEY,
    );
    const first = await fresh.nextJob();
    fresh.accept(first);
    const hedge = await known.nextJob();
    expect(hedge.id).toBe(first.id);
    // The new tab works on it for a while before the known tab's first token wins the race.
    await new Promise((r) => setTimeout(r, 200));
    known.serve(hedge, ["fast"], { prompt_tokens: 5, completion_tokens: 1 });
    expect((await fresh.next("job.cancel")).jobId).toBe(first.id);
    fresh.done(first, "abort");
    expect((await streamText(await res)).text).toBe("fast");

    const after = await until(oc, (w) => (w?.hedge_won ?? 0) > before.hedge_won);
    expect(after!.hedged).toBe(before.hedged + 1);
    expect(after!.hedge_won).toBe(before.hedge_won + 1);
    // The new tab was cancelled ≥ 200 ms after it was sent the job.
    expect(after!.hedge_loser_ms - before.hedge_loser_ms).toBeGreaterThanOrEqual(200);

    const { types, samples } = await scrape();
    expect(types.get("tabgrid_hedges_total")).toBe("counter");
    const value = (name: string, labels: Record<string, string>) =>
      sampleValue(samples, name, labels);
    expect(value("tabgrid_hedges_total", { region: "oc", outcome: "won" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(value("tabgrid_hedge_loser_seconds_total", { region: "oc" })).toBeGreaterThanOrEqual(
      0.2,
    );
  }, 20_000);
});
