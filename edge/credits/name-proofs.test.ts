import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { creditPost, nameBody } from "../../test/workerd/credit-helpers.js";
import { newKeyPair } from "../../test/workerd/scripted-tab.js";
import { useTabs } from "../../test/workerd/tab-helpers.js";
import { NAME_PROOF_BURST } from "./credit-routes.js";

/**
 * POST /v1/credits/name needs no API key: per address it is bounded before the signature is
 * checked or the ledger asked (credit-routes.ts), and a proof the ledger took is not taken again.
 */

const tabs = useTabs();

async function code(res: Response): Promise<string | null | undefined> {
  return OpenAIErrorBodySchema.parse(await res.json()).error.code;
}

describe("display-name proofs", () => {
  it("one address gets NAME_PROOF_BURST verifications, then 429 before its body is read", async () => {
    const from = (ip: string) => ({ "cf-connecting-ip": ip });
    // Signed by a key that never connected as a tab: verified, then 404 from the ledger.
    const proof = await nameBody(await newKeyPair(), "Flood");
    for (let i = 0; i < NAME_PROOF_BURST; i++) {
      const res = await creditPost("name", proof, undefined, from("203.0.113.77"));
      expect([res.status, await code(res)]).toEqual([404, "unknown_identity"]);
    }
    const over = await creditPost("name", proof, undefined, from("203.0.113.77"));
    expect([over.status, await code(over)]).toEqual([429, "rate_limit_exceeded"]);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Not even a body is read: a body that is no proof gets the same answer.
    const junk = await creditPost("name", { not: "a proof" }, undefined, from("203.0.113.77"));
    expect(junk.status).toBe(429);
    // Another address is not held back.
    const other = await creditPost("name", proof, undefined, from("203.0.113.78"));
    expect(other.status).toBe(404);
  });

  it("the addresses of one IPv6 /64 share that bound", async () => {
    const proof = await nameBody(await newKeyPair(), "Flood");
    // A fresh address of the same /64 for every request: one client's subnet, one bucket.
    for (let i = 0; i < NAME_PROOF_BURST; i++) {
      const res = await creditPost("name", proof, undefined, {
        "cf-connecting-ip": `2001:db8:77:1::${(i + 1).toString(16)}`,
      });
      expect(res.status).toBe(404);
    }
    const over = await creditPost("name", proof, undefined, {
      "cf-connecting-ip": "2001:db8:77:1:ffff::1",
    });
    expect([over.status, await code(over)]).toEqual([429, "rate_limit_exceeded"]);
  });

  it("a proof the ledger took is refused when sent again (single use)", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["np-replay"], { keys });
    await tab.next("credit.balance"); // the account is open
    const proof = await nameBody(keys, "Ada");
    const from = { "cf-connecting-ip": "203.0.113.79" };
    expect((await creditPost("name", proof, undefined, from)).status).toBe(200);
    const again = await creditPost("name", proof, undefined, from);
    expect([again.status, await code(again)]).toEqual([409, "stale_proof"]);
  });
});
