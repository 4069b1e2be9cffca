import { env } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { AppContext, AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { onError } from "../http/on-error.js";
import { authenticate } from "./authenticate.js";

/**
 * The anonymous tier through the real middleware and Client object, with a small per-minute limit
 * (its own env object, so its own parsed configuration).
 */
const testEnv: AppEnv = { ...(env as unknown as AppEnv), ANONYMOUS_TIER: "on", ANONYMOUS_RPM: "2" };

const app = new Hono<AppContext>();
app.use("*", authenticate());
app.post("/refused", () => {
  throw new ApiError(
    404,
    "not_found_error",
    "No tab serves this model.",
    "model",
    "model_not_found",
  );
});
app.post("/invalid", () => {
  throw new ApiError(400, "invalid_request_error", "Invalid messages.", "messages");
});
app.post("/served", (c) => c.json({ ok: true }));
app.onError(onError);

async function call(path: string, ip: string): Promise<Response> {
  const pending: Promise<unknown>[] = [];
  const ctx = {
    waitUntil: (p: Promise<unknown>) => pending.push(p),
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;
  const res = await app.request(
    `http://tabgrid.test${path}`,
    { method: "POST", headers: { "cf-connecting-ip": ip } },
    testEnv,
    ctx,
  );
  await res.arrayBuffer();
  await Promise.all(pending);
  return new Response(null, res);
}

describe("anonymous tier", () => {
  it("refused requests (400/404) are not counted against the address's limit", async () => {
    const ip = "198.51.100.21";
    for (let i = 0; i < 5; i++) {
      expect((await call("/refused", ip)).status).toBe(404);
      expect((await call("/invalid", ip)).status).toBe(400);
    }
    expect((await call("/served", ip)).status).toBe(200);
    expect((await call("/served", ip)).status).toBe(200);
    expect((await call("/served", ip)).status).toBe(429);
  });

  it("its rate-limit message speaks of the address, not a key", async () => {
    const ip = "198.51.100.22";
    await call("/served", ip);
    await call("/served", ip);
    const pending: Promise<unknown>[] = [];
    const res = await app.request(
      "http://tabgrid.test/served",
      { method: "POST", headers: { "cf-connecting-ip": ip } },
      testEnv,
      {
        waitUntil: (p: Promise<unknown>) => pending.push(p),
        passThroughOnException: () => {},
        props: {},
      } as unknown as ExecutionContext,
    );
    expect(res.status).toBe(429);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.message).toBe("Rate limit reached for this address; retry later.");
    expect(body.error.message).not.toContain("key");
  });

  it("addresses of one IPv6 /64 share one bucket; another /64 has its own", async () => {
    // One subscriber sends from any address of its /64: before, each had a fresh bucket (and object).
    expect((await call("/served", "2001:db8:51:1::1")).status).toBe(200);
    expect((await call("/served", "2001:db8:51:1:ffff:ffff:ffff:fffe")).status).toBe(200);
    expect((await call("/served", "2001:0db8:0051:0001::3")).status).toBe(429);
    expect((await call("/served", "2001:db8:51:2::1")).status).toBe(200);
  });

  it("an IPv4-mapped IPv6 address shares its IPv4 address's bucket", async () => {
    expect((await call("/served", "198.51.100.23")).status).toBe(200);
    expect((await call("/served", "::ffff:198.51.100.23")).status).toBe(200);
    expect((await call("/served", "198.51.100.23")).status).toBe(429);
  });
});
