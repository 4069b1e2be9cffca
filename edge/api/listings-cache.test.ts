import { describe, expect, it } from "vitest";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import type { AppEnv } from "../env.js";
import worker from "../index.js";
import { forgetListings } from "./listing-cache.js";
import { listTabs, type TabList } from "./nodes.js";

/**
 * GET /v1/models and GET /v1/nodes need no key. Each used to read the Directory afresh, and
 * /v1/nodes every Region shard with tabs, for every request: a loop of unauthenticated requests
 * was a loop of calls into single objects. Now an isolate reads each at most once per
 * LISTING_CACHE_MS (default 2 s), and requests arriving meanwhile share that read; /v1/nodes lists
 * at most MAX_LISTED_TABS tabs.
 */
const tabs = useTabs();

/** An env whose Directory and Region namespaces count the stubs made (one per call here). */
function countingEnv(vars: Partial<AppEnv> = {}) {
  const asked = { directory: 0, region: 0 };
  const counting = <N extends object>(ns: N, key: keyof typeof asked): N =>
    new Proxy(ns, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== "function") return value;
        if (prop !== "get") return value.bind(target);
        return (...args: unknown[]) => {
          // The Directory's `global` object (not its `metrics` one, which counts requests).
          const name = (args[0] as DurableObjectId).name;
          if (key === "region" || name === "global") asked[key] += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  const env: AppEnv = {
    ...appEnv,
    LISTING_CACHE_MS: undefined,
    ...vars,
    DIRECTORY: counting(appEnv.DIRECTORY, "directory"),
    REGION: counting(appEnv.REGION, "region"),
  };
  return { env, asked };
}

function get(path: string, env: AppEnv): Promise<Response> {
  const waits: Promise<unknown>[] = [];
  const ctx = {
    waitUntil: (p: Promise<unknown>) => waits.push(p),
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;
  return worker.request(`http://tabgrid.test${path}`, {}, env, ctx) as Promise<Response>;
}

async function listed(env: AppEnv): Promise<TabList> {
  return (await (await get("/v1/nodes", env)).json()) as TabList;
}

/** Poll until the Directory counts `n` tabs serving `model` (regions report within a second). */
async function directoryCounts(model: string, n: number): Promise<void> {
  const { env } = countingEnv({ LISTING_CACHE_MS: "0" });
  for (const end = Date.now() + 5000; Date.now() < end;) {
    const list = await listed(env);
    if (list.data.filter((t) => t.models.includes(model)).length >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the Directory never counted ${n} tabs of ${model}`);
}

describe("the public listings' isolate cache", () => {
  it("GET /v1/models: 40 requests, one Directory read", async () => {
    forgetListings();
    const { env, asked } = countingEnv();
    const burst = await Promise.all(Array.from({ length: 20 }, () => get("/v1/models", env)));
    for (let i = 0; i < 20; i++) burst.push(await get("/v1/models", env));
    for (const res of burst) expect(res.status).toBe(200);
    // Before: 40, one per request.
    expect(asked.directory).toBe(1);
    expect(burst[0]!.headers.get("cache-control")).toBe("public, max-age=2");
  });

  it("GET /v1/nodes: 40 requests, one Directory read and one per shard with tabs", async () => {
    await tabs.tab(["listing-cache"]);
    await directoryCounts("listing-cache", 1);
    forgetListings();
    const { env, asked } = countingEnv();
    const burst = await Promise.all(Array.from({ length: 20 }, () => listed(env)));
    for (let i = 0; i < 20; i++) burst.push(await listed(env));
    for (const list of burst)
      expect(list.data.some((t) => t.models.includes("listing-cache"))).toBe(true);
    // Before: 40 Directory reads and 40 × the shards with tabs.
    expect(asked.directory).toBe(1);
    expect(asked.region).toBeGreaterThanOrEqual(1);
    expect(asked.region).toBeLessThanOrEqual(3);
  });

  it("is read again once its time has passed", async () => {
    forgetListings();
    const { env, asked } = countingEnv({ LISTING_CACHE_MS: "200" });
    await get("/v1/models", env);
    await get("/v1/models", env);
    expect(asked.directory).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    await get("/v1/models", env);
    expect(asked.directory).toBe(2);
  });

  it("GET /v1/nodes lists at most its cap, and says how many there are", async () => {
    await tabs.tab(["listing-cap"]);
    await tabs.tab(["listing-cap"]);
    await tabs.tab(["listing-cap"]);
    await directoryCounts("listing-cap", 3);
    const { env, asked } = countingEnv();
    const all = await listTabs(env);
    const capped = await listTabs(env, 2);
    expect(capped.data.length).toBe(2);
    expect(capped.has_more).toBe(true);
    expect(capped.total).toBe(all.total);
    expect(all.total).toBeGreaterThanOrEqual(3);
    expect(asked.region).toBeGreaterThanOrEqual(2);
  });
});
