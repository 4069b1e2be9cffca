import { SELF, env, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { keyDirectoryStub } from "../directory/directory-client.js";
import type { AppEnv } from "../env.js";
import { newApiKey } from "./api-key.js";

/** Production settings (anonymous tier off, admin token set): what a stranger can leave behind. */
const appEnv = env as unknown as AppEnv;
const ADMIN = "test-admin-token-0123456789";

function chat(key: string, ip = "198.51.100.199"): Promise<Response> {
  return SELF.fetch("http://tabgrid.test/v1/chat/completions", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${key}`,
      "cf-connecting-ip": ip,
    },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  });
}

describe("nothing stored for an unauthenticated request", () => {
  it("200 random well-formed keys are refused without creating a Client object each", async () => {
    const before = (await listDurableObjectIds(appEnv.CLIENT)).length;
    const directoryBefore = (await listDurableObjectIds(appEnv.DIRECTORY)).length;
    // 20 from each address: within its failed-authentication limit (failed-auth.ts), so every key
    // reaches the directory lookup.
    for (let i = 0; i < 200; i += 20) {
      const ip = `198.51.100.${200 + i / 20}`;
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => chat(newApiKey().key, ip)),
      );
      for (const res of answers) {
        expect(res.status).toBe(401);
        expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe("invalid_api_key");
      }
    }
    expect((await listDurableObjectIds(appEnv.CLIENT)).length).toBe(before);
    // The key directory is a fixed set of 16 shards (plus the global region directory).
    expect(
      (await listDurableObjectIds(appEnv.DIRECTORY)).length - directoryBefore,
    ).toBeLessThanOrEqual(17);
  });

  it("a created key still works, and its revocation is seen before the Client object", async () => {
    const created = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bounds" }),
    });
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    // Admitted (no tab serves "m", so 404 after admission rather than 401).
    expect((await chat(key)).status).toBe(404);
    const revoked = await SELF.fetch(`http://tabgrid.test/v1/admin/keys/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(revoked.status).toBe(200);
    const res = await chat(key);
    expect(res.status).toBe(401);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe("revoked_api_key");
  });

  it("a key missing from the directory (created before it existed) is registered by the admin API", async () => {
    const created = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "legacy" }),
    });
    const { id, key } = (await created.json()) as { id: string; key: string };
    // As if it had been created by the code before the key directory.
    await runInDurableObject(keyDirectoryStub(appEnv, id), (_obj, state) => {
      state.storage.sql.exec(`DELETE FROM keys WHERE id = ?`, id);
    });
    expect((await chat(key)).status).toBe(401);
    const info = await SELF.fetch(`http://tabgrid.test/v1/admin/keys/${id}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(info.status).toBe(200);
    expect((await chat(key)).status).toBe(404);
  });
});
