import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";

const ADMIN = "test-admin-token-0123456789";
const tabs: ScriptedTab[] = [];
afterEach(() => {
  tabs.splice(0).forEach((t) => t.close());
});

function admin(method: string, path: string, body?: unknown, token = ADMIN): Promise<Response> {
  return SELF.fetch(`http://tabgrid.test/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

async function createKey(limits: object = {}): Promise<{ id: string; key: string }> {
  const res = await admin("POST", "/keys", { name: "test", ...limits });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

function chat(model: string, key?: string): Promise<Response> {
  return SELF.fetch("http://tabgrid.test/v1/chat/completions", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = OpenAIErrorBodySchema.parse(await res.json());
  expect(body.error.code).toBe(code);
  return res;
}

describe("API keys", () => {
  it("requests without a key are 401 when the anonymous tier is off", async () => {
    await expectError(await chat("m"), 401, "missing_api_key");
    await expectError(await chat("m", "sk-not-a-tabgrid-key"), 401, "invalid_api_key");
    await expectError(await chat("m", `tg_000000000000_${"A".repeat(43)}`), 401, "invalid_api_key");
  });

  it("a created key works, is stored only as a hash, and stops working once revoked", async () => {
    const { id, key } = await createKey();
    const tab = await ScriptedTab.connect(["auth-model"]);
    tabs.push(tab);
    const resP = chat("auth-model", key);
    tab.serve(await tab.nextJob(), ["welcome"]);
    const ok = await resP;
    expect(ChatCompletionSchema.parse(await ok.json()).choices[0]?.message.content).toBe("welcome");

    const info = (await (await admin("GET", `/keys/${id}`)).json()) as Record<string, unknown>;
    expect(JSON.stringify(info)).not.toContain(key.slice("tg_000000000000_".length));
    expect(info.revoked).toBe(false);

    expect((await admin("DELETE", `/keys/${id}`)).status).toBe(200);
    await expectError(await chat("auth-model", key), 401, "revoked_api_key");
  });

  it("a key with a wrong secret is refused", async () => {
    const { key } = await createKey();
    const forged = key.slice(0, -4) + (key.endsWith("AAAA") ? "BBBB" : "AAAA");
    await expectError(await chat("m", forged), 401, "invalid_api_key");
  });

  it("the admin API needs the admin token: 401 without, 403 with a wrong one", async () => {
    const none = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
      method: "POST",
      body: "{}",
    });
    await expectError(none, 401, "missing_admin_token");
    await expectError(await admin("POST", "/keys", {}, "wrong-token"), 403, "invalid_admin_token");
    await expectError(await admin("GET", "/keys/ffffffffffff"), 404, "key_not_found");
  });

  it("admin bodies are validated like any other", async () => {
    const res = await admin("POST", "/keys", { rpm: -1 });
    expect(res.status).toBe(400);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.param).toBe("rpm");
  });
});

describe("per-key limits", () => {
  it("requests per minute: 429 with Retry-After once the bucket is empty", async () => {
    const { key } = await createKey({ rpm: 2 });
    // No tab serves this model, so each admitted request answers 404 at once.
    expect((await chat("limit-model", key)).status).toBe(404);
    expect((await chat("limit-model", key)).status).toBe(404);
    const limited = await expectError(await chat("limit-model", key), 429, "rate_limit_exceeded");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("concurrent requests: 429 while one runs, admitted again after it ends", async () => {
    const { key } = await createKey({ concurrent: 1 });
    const tab = await ScriptedTab.connect(["conc-model"]);
    tabs.push(tab);
    const first = chat("conc-model", key);
    const job = await tab.nextJob();
    await expectError(await chat("conc-model", key), 429, "too_many_concurrent_requests");
    tab.serve(job, ["done"]);
    await (await first).text();
    const second = chat("conc-model", key);
    // After a finished job the Region may first give the tab a canary (docs/trust.md, on in
    // production), which a tab cannot tell from a client job: answer every job until the
    // second response ends, or the client's job waits behind an unanswered canary.
    let ended = false;
    void (async () => {
      while (!ended) {
        const next = await tab.nextJobOrClose();
        // A job that arrives after the test ended finds the socket closed by afterEach.
        if (!next || ended || tab.isClosed) return;
        tab.serve(next, ["again"]);
      }
    })();
    expect((await second).status).toBe(200);
    ended = true;
  });

  it("a job can only be read with the key that created it", async () => {
    const a = await createKey();
    const b = await createKey();
    const tab = await ScriptedTab.connect(["owner-model"]);
    tabs.push(tab);
    const resP = chat("owner-model", a.key);
    tab.serve(await tab.nextJob(), ["secret answer"]);
    const res = await resP;
    const jobId = res.headers.get("x-tabgrid-job-id");
    const token = res.headers.get("x-tabgrid-job-token") ?? "";
    const get = (key: string) =>
      SELF.fetch(`http://tabgrid.test/v1/jobs/${jobId}`, {
        headers: { authorization: `Bearer ${key}`, "x-tabgrid-job-token": token },
      });
    expect((await get(a.key)).status).toBe(200);
    // The token alone is not enough: a keyed job needs its key too.
    expect((await get(b.key)).status).toBe(403);
  });
});

describe("anonymous tier", () => {
  it("admits by address with its own limits", async () => {
    const { env } = await import("cloudflare:test");
    const { clientStub } = await import("./authenticate.js");
    const stub = clientStub(env as never, "ip:198.51.100.7");
    const limits = { rpm: 1, concurrent: 1 };
    const first = await stub.admit(null, limits);
    expect(first.ok).toBe(true);
    const second = await stub.admit(null, limits);
    expect(second).toMatchObject({ ok: false, reason: "too_many_concurrent" });
    if (first.ok) await stub.release(first.slot);
    expect(await stub.admit(null, limits)).toMatchObject({ ok: false, reason: "rate_limited" });
  });
});
