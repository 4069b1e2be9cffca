import { describe, expect, it } from "vitest";
import { linkText, nameText } from "../../shared/credits/credit-proofs.js";
import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  fromBase64url,
  toBase64url,
} from "../../shared/protocol/node-identity.js";
import { chooseName, keyIdOf, linkToKey, type StatementSigner } from "./credit-link.js";

const KEY = `tg_0123456789ab_${"A".repeat(43)}`;

async function signer(): Promise<StatementSigner> {
  const keys = (await crypto.subtle.generateKey(IDENTITY_ALGORITHM, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  return async (text) => ({
    publicKey: toBase64url(spki),
    signature: toBase64url(
      new Uint8Array(
        await crypto.subtle.sign(
          SIGNATURE_ALGORITHM,
          keys.privateKey,
          new TextEncoder().encode(text),
        ),
      ),
    ),
  });
}

/** A coordinator stand-in that checks the signature over `expected` and records the request. */
function coordinator(expected: (body: { signedAt: number }) => string) {
  const seen: Array<{ url: string; auth: string | null; body: Record<string, unknown> }> = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    const body = JSON.parse(init.body as string) as {
      publicKey: string;
      signature: string;
      signedAt: number;
    };
    seen.push({ url, auth: new Headers(init.headers).get("authorization"), body });
    const key = await crypto.subtle.importKey(
      "spki",
      fromBase64url(body.publicKey)!,
      IDENTITY_ALGORITHM,
      false,
      ["verify"],
    );
    const ok = await crypto.subtle.verify(
      SIGNATURE_ALGORITHM,
      key,
      fromBase64url(body.signature)!,
      new TextEncoder().encode(expected(body)),
    );
    return ok
      ? Response.json({ public_id: "0a1b2c3d4e5f" })
      : Response.json(
          { error: { message: "refused", type: "permission_error", param: null, code: null } },
          { status: 403 },
        );
  }) as unknown as typeof fetch;
  return { fetchFn, seen };
}

describe("linking from the contributor page", () => {
  it("signs the link statement for the key's id and sends the key only as the Bearer", async () => {
    const { fetchFn, seen } = coordinator((b) => linkText("0123456789ab", b.signedAt));
    const answer = await linkToKey(` ${KEY} `, await signer(), fetchFn, 1_700_000_000_000);
    expect(answer).toEqual({ ok: true, publicId: "0a1b2c3d4e5f" });
    expect(seen[0]?.url).toBe("/v1/credits/link");
    expect(seen[0]?.auth).toBe(`Bearer ${KEY}`);
    expect(JSON.stringify(seen[0]?.body)).not.toContain(KEY);
  });

  it("refuses what is not a key, and says so when the browser has no identity", async () => {
    const { fetchFn, seen } = coordinator(() => "");
    expect(keyIdOf("sk-openai")).toBeNull();
    expect(await linkToKey("sk-openai", await signer(), fetchFn)).toMatchObject({ ok: false });
    expect(await linkToKey(KEY, async () => null, fetchFn)).toMatchObject({ ok: false });
    expect(seen).toHaveLength(0);
  });

  it("signs a display name (and its removal) and shows the coordinator's error", async () => {
    const { fetchFn } = coordinator((b) =>
      nameText((b as { name?: string | null }).name ?? null, b.signedAt),
    );
    expect(await chooseName("Ada", await signer(), fetchFn)).toMatchObject({ ok: true });
    expect(await chooseName(null, await signer(), fetchFn)).toMatchObject({ ok: true });
    const wrong = coordinator(() => "something else");
    expect(await chooseName("Ada", await signer(), wrong.fetchFn)).toEqual({
      ok: false,
      message: "refused",
    });
  });
});
