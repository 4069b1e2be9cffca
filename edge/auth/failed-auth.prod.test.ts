import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { REFUSAL_HOLD_MS } from "./early-refusal.js";
import { FAILED_AUTH_BURST, FAILED_AUTH_PER_MIN } from "./failed-auth.js";

/**
 * An address sending made-up `tg_…` keys (issue 11, bench:abuse unauth-flood): each one cost a
 * SHA-256 and a key-directory call before its 401, without end. Past FAILED_AUTH_BURST failures
 * the address is answered 429 before either, in OpenAI's error shape (held first: early-refusal.ts); other addresses, and a key
 * this isolate already verified, are not affected, and no refusal is counted against a key.
 */

const ADMIN = "test-admin-token-0123456789";

async function createKey(limits: object = {}): Promise<{ id: string; key: string }> {
  const res = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "failed-auth", ...limits }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

/** A request that needs a key but no tab: past authentication it is 404 (no such job). */
const asKey = (key: string, ip: string) =>
  SELF.fetch("http://tabgrid.test/v1/jobs/job_wnam_00000000-0000-4000-8000-000000000000", {
    headers: { authorization: `Bearer ${key}`, "cf-connecting-ip": ip },
  });

const madeUp = (i: number) => `tg_${i.toString(16).padStart(12, "0")}_${"B".repeat(43)}`;

async function code(res: Response): Promise<string | null> {
  return OpenAIErrorBodySchema.parse(await res.json()).error.code;
}

describe("failed authentications per address", () => {
  it("an address past the limit gets 429 before its key is checked; others do not", async () => {
    const guesser = "198.51.100.131";
    for (let i = 0; i < FAILED_AUTH_BURST; i++) {
      const res = await asKey(madeUp(i), guesser);
      expect(res.status).toBe(401);
      expect(await code(res)).toBe("invalid_api_key");
    }
    const refused = await asKey(madeUp(1000), guesser);
    expect(refused.status).toBe(429);
    const body = OpenAIErrorBodySchema.parse(await refused.json());
    expect(body.error.code).toBe("too_many_failed_authentications");
    expect(body.error.type).toBe("rate_limit_error");
    expect(body.error.message).toContain("from this address");
    // One more failure is allowed a minute ÷ FAILED_AUTH_PER_MIN later.
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(60 / FAILED_AUTH_PER_MIN));
    // Malformed keys count as failures too and are refused the same way.
    expect((await asKey("tg_not-a-key", guesser)).status).toBe(429);

    // Another address with a made-up key still gets its 401.
    const other = await asKey(madeUp(2000), "198.51.100.132");
    expect(other.status).toBe(401);
    expect(await code(other)).toBe("invalid_api_key");
    // Two refusals held up to 1.5 × REFUSAL_HOLD_MS each (early-refusal.ts).
  }, 20_000);

  it("a valid key keeps working from a refused address once verified here; refusals cost the key nothing", async () => {
    const guesser = "198.51.100.141";
    const { id, key } = await createKey({ rpm: 3 });
    for (let i = 0; i < FAILED_AUTH_BURST; i++) await asKey(madeUp(5000 + i), guesser);
    // A key this isolate has not verified yet: refused like any other from this address.
    expect((await asKey(key, guesser)).status).toBe(429);
    // Verified from another address, it is known here; from the guesser's address it now passes.
    expect((await asKey(key, "198.51.100.142")).status).toBe(404);
    expect((await asKey(key, guesser)).status).toBe(404);
    // The key's id with a wrong secret, from the refused address: 429, no directory call, and
    // nothing is taken from the key's 3 requests a minute (its Client object is never asked).
    // Held like any refusal past the limit (early-refusal.ts), so sent together.
    const started = Date.now();
    const wrongSecret = await Promise.all(
      Array.from({ length: 5 }, () => asKey(`tg_${id}_${"C".repeat(43)}`, guesser)),
    );
    for (const res of wrongSecret) expect(res.status).toBe(429);
    expect(Date.now() - started).toBeGreaterThanOrEqual(REFUSAL_HOLD_MS / 2);
    expect((await asKey(key, "198.51.100.143")).status).toBe(404);
  }, 20_000);

  it("counts an IPv6 guesser by its /64: a new address in it is refused too", async () => {
    // Before: each of the 2^64 addresses of one subscriber's /64 had a fresh bucket.
    for (let i = 0; i < FAILED_AUTH_BURST; i++) {
      expect(
        (await asKey(madeUp(7000 + i), `2001:db8:131:1::${(i + 1).toString(16)}`)).status,
      ).toBe(401);
    }
    const refused = await asKey(madeUp(7999), "2001:db8:131:1:abcd::1");
    expect(refused.status).toBe(429);
    expect(await code(refused)).toBe("too_many_failed_authentications");
    expect((await asKey(madeUp(8000), "2001:db8:131:2::1")).status).toBe(401);
  }, 20_000);
});
