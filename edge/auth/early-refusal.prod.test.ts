import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import worker from "../index.js";
import { REFUSAL_HOLD_MS } from "./early-refusal.js";
import { FAILED_AUTH_BURST } from "./failed-auth.js";

/**
 * bench:abuse's unauthenticated flood (issue 11): requests with made-up keys, no key, and 2 MB
 * chunked bodies from one address. Past the address's failed-authentication limit each is
 * answered by the Worker's first check (early-refusal.ts): held REFUSAL_HOLD_MS ± half, then the
 * 429 in OpenAI's shape, its body never read. Requests without any key count as failures too.
 */

const URL_CHAT = "http://tabgrid.test/v1/chat/completions";
const madeUp = (i: number) => `tg_${i.toString(16).padStart(12, "0")}_${"D".repeat(43)}`;
const SMALL = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] });

function chat(ip: string, opts: { key?: string; body?: BodyInit; headers?: object } = {}) {
  return SELF.fetch(URL_CHAT, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "cf-connecting-ip": ip,
      ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
      ...opts.headers,
    },
    body: opts.body ?? SMALL,
  });
}

async function errorOf(res: Response) {
  return OpenAIErrorBodySchema.parse(await res.json()).error;
}

/** Spend an address's failed-authentication burst with made-up keys (all answered 401). */
async function exhaust(ip: string): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: FAILED_AUTH_BURST }, (_, i) => chat(ip, { key: madeUp(i) })),
  );
  for (const res of answers) expect(res.status).toBe(401);
  await Promise.all(answers.map((r) => r.arrayBuffer()));
}

describe("refusals past the failed-authentication limit", () => {
  it("requests without a key count as failed authentications and meet the same 429", async () => {
    const ip = "198.51.100.151";
    for (let i = 0; i < FAILED_AUTH_BURST; i++) {
      const res = await chat(ip);
      expect(res.status).toBe(401);
      expect((await errorOf(res)).code).toBe("missing_api_key");
    }
    const refused = await chat(ip);
    expect(refused.status).toBe(429);
    const error = await errorOf(refused);
    expect(error.code).toBe("too_many_failed_authentications");
    expect(error.message).toContain("without a valid API key from this address");
    // Another address without a key still gets its 401.
    expect((await errorOf(await chat("198.51.100.152"))).code).toBe("missing_api_key");
  }, 20_000);

  it("is held before it is answered, in OpenAI's shape with a request id and CORS headers", async () => {
    const ip = "198.51.100.153";
    await exhaust(ip);
    const started = Date.now();
    const [withKey, withoutKey] = await Promise.all([
      chat(ip, { key: madeUp(100), headers: { "x-request-id": "abuse-test-0001" } }),
      chat(ip),
    ]);
    for (const res of [withKey, withoutKey]) {
      expect(res.status).toBe(429);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-expose-headers")).toContain("retry-after");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // Held at least half the hold time (the hold is REFUSAL_HOLD_MS ± half, at random).
    expect(Date.now() - started).toBeGreaterThanOrEqual(REFUSAL_HOLD_MS / 2);
    expect(withKey.headers.get("x-request-id")).toBe("abuse-test-0001");
    const error = await errorOf(withKey);
    expect(error).toMatchObject({
      type: "rate_limit_error",
      code: "too_many_failed_authentications",
      request_id: "abuse-test-0001",
    });
    expect((await errorOf(withoutKey)).request_id).toBe(withoutKey.headers.get("x-request-id"));
  }, 20_000);

  it("is counted in /metrics like any other answered request", async () => {
    const metrics = async () => {
      const token = "metrics-token-for-early-refusal";
      const res = await worker.request(
        "/metrics",
        { headers: { authorization: `Bearer ${token}` } },
        { ...env, METRICS_TOKEN: token },
      );
      expect(res.status).toBe(200);
      const line = (await res.text())
        .split("\n")
        .find((l) => l.includes('route="/v1/chat/completions"') && l.includes('status="429"'));
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    const ip = "198.51.100.157";
    await exhaust(ip);
    const before = await metrics();
    const refused = await Promise.all([chat(ip, { key: madeUp(300) }), chat(ip)]);
    for (const res of refused) expect(res.status).toBe(429);
    expect(await metrics()).toBe(before + 2);
  }, 20_000);

  it("does not read a refused request's body: a 2 MB chunked upload is cancelled unread", async () => {
    const ip = "198.51.100.154";
    await exhaust(ip);
    let pulled = 0;
    let cancelled = false;
    const chunk = new TextEncoder().encode("€".repeat(20_000));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled++ * chunk.byteLength >= 2_000_000) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        cancelled = true;
      },
    });
    const res = await chat(ip, { key: madeUp(200), body });
    expect(res.status).toBe(429);
    expect((await errorOf(res)).code).toBe("too_many_failed_authentications");
    expect(cancelled).toBe(true);
    // A few chunks at most were buffered ahead; nowhere near the 2 MB (100 chunks).
    expect(pulled).toBeLessThan(10);
  }, 20_000);

  it("leaves preflights, public routes and a key already verified here alone", async () => {
    const ip = "198.51.100.155";
    const made = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
      method: "POST",
      headers: {
        authorization: "Bearer test-admin-token-0123456789",
        "content-type": "application/json",
      },
      body: JSON.stringify({ name: "early-refusal" }),
    });
    const { key } = (await made.json()) as { key: string };
    await exhaust(ip);
    const preflight = await SELF.fetch(URL_CHAT, {
      method: "OPTIONS",
      headers: {
        origin: "https://example.com",
        "access-control-request-method": "POST",
        "cf-connecting-ip": ip,
      },
    });
    expect(preflight.status).toBe(204);
    const models = await SELF.fetch("http://tabgrid.test/v1/models", {
      headers: { "cf-connecting-ip": ip },
    });
    expect(models.status).toBe(200);
    // Verified from another address, the key is known to this isolate and passes from this one:
    // past authentication this request is refused for its model (404), not for the address.
    const job = (from: string) =>
      SELF.fetch("http://tabgrid.test/v1/jobs/job_wnam_00000000-0000-4000-8000-000000000000", {
        headers: { authorization: `Bearer ${key}`, "cf-connecting-ip": from },
      });
    expect((await job("198.51.100.156")).status).toBe(404);
    expect((await job(ip)).status).toBe(404);
  }, 20_000);
});
