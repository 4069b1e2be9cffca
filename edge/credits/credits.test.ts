import { SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { NetworkView } from "../../shared/status/status-views.js";
import {
  balanceWhere,
  creditPost,
  keyAccount,
  linkBody,
  nameBody,
  testKey,
} from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, regionCounts, useTabs } from "../../test/workerd/tab-helpers.js";
import { publicNodeId } from "../region/public-id.js";
import { regionStub } from "../region/region-stub.js";
import { ledgerStub } from "./ledger-client.js";
import { forgetTopContributors } from "./top-contributors.js";

const tabs = useTabs();
/** Munich: its nearest Region object is weur (the tests' default one is wnam). */
const MUNICH = { lat: 48.14, lon: 11.58 };
const FROM_MUNICH = { "x-tabgrid-location": `${MUNICH.lat},${MUNICH.lon}` };

/** Serve one client request on `tab` with `tokens` completion tokens ("abcdef…" text). */
async function serveOne(
  tab: ScriptedTab,
  model: string,
  tokens: number,
  headers: Record<string, string> = {},
) {
  const res = chat(model, { max_tokens: 20 }, headers);
  const job = await tab.nextJob();
  tab.serve(job, ["abcdefghijklmnop".slice(0, tokens)], { completion_tokens: tokens });
  expect((await res).status).toBe(200);
  return job;
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe(code);
}

function lastUserText(job: JobSpec): string {
  return job.input.kind === "chat" ? (job.input.messages.at(-1)?.content ?? "") : "";
}

describe("the credit ledger", () => {
  it("keeps an identity's credit across reconnects and Region objects, and tells the tab", async () => {
    const keys = await newKeyPair();
    const first = await tabs.tab(["cr-move"], { keys });
    expect(await first.next("credit.balance")).toMatchObject({ balance: 0, earned: 0 });
    await serveOne(first, "cr-move", 3);
    expect(await balanceWhere(first, (b) => b.earned > 0)).toMatchObject({
      balance: 3,
      earned: 3,
      withheld: 0,
      quarantined: false,
      linked: false,
    });
    first.close();
    await first.closed;

    // The same identity, now connected to another Region object (weur, not wnam).
    const again = await tabs.tab(["cr-move"], { keys, loc: MUNICH });
    expect(again.nodeId).toBe(first.nodeId);
    expect(await again.next("credit.balance")).toMatchObject({ balance: 3 });
    await serveOne(again, "cr-move", 4, FROM_MUNICH);
    expect(await balanceWhere(again, (b) => b.earned > 3)).toMatchObject({
      balance: 7,
      earned: 7,
    });
    // Each Region counts only what was served there; the ledger holds the identity's total.
    const weur = await regionStub(appEnv, "weur").listTabs();
    expect(weur.find((t) => t.models.includes("cr-move"))?.credits).toBe(4);
  });

  it("withholds credit from a quarantined identity, in every Region, and keeps it off the public list", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-quarantine"], { keys });
    await serveOne(tab, "cr-quarantine", 3);
    await balanceWhere(tab, (b) => b.earned === 3);
    await regionStub(appEnv, "wnam").quarantine(tab.nodeId, "test: answers failed audits");
    expect(await balanceWhere(tab, (b) => b.quarantined)).toMatchObject({ earned: 3 });
    tab.close();
    await tab.closed;

    // A Region that never saw the quarantine still gets the identity's credit withheld.
    const moved = await tabs.tab(["cr-quarantine"], { keys, loc: MUNICH });
    expect(await moved.next("credit.balance")).toMatchObject({ quarantined: true });
    await serveOne(moved, "cr-quarantine", 4, FROM_MUNICH);
    expect(await balanceWhere(moved, (b) => b.withheld > 0)).toMatchObject({
      earned: 3,
      balance: 3,
      withheld: 4,
      quarantined: true,
    });
    const top = await ledgerStub(appEnv).top(50);
    expect(top.map((r) => r.public_id)).not.toContain(await publicNodeId(tab.nodeId));
  });
});

describe("linking a tab identity to an API key", () => {
  it("refuses a link not signed by the identity's own key for this key; takes the real one once", async () => {
    const key = await testKey();
    const other = await testKey();
    const victim = await newKeyPair();
    const thief = await newKeyPair();
    // An identity nobody ever connected as a tab has no account to link.
    await expectError(
      await creditPost("link", await linkBody(victim, key.id), key.key),
      404,
      "unknown_identity",
    );
    const tab = await tabs.tab(["cr-link"], { keys: victim });
    await tab.next("credit.balance");

    // Someone else's signature over the victim's public key.
    await expectError(
      await creditPost("link", await linkBody(thief, key.id, victim), key.key),
      403,
      "invalid_identity_proof",
    );
    // The victim's own proof, made for another key, replayed with this one.
    await expectError(
      await creditPost("link", await linkBody(victim, other.id), key.key),
      403,
      "invalid_identity_proof",
    );
    // A proof from an hour ago.
    await expectError(
      await creditPost(
        "link",
        await linkBody(victim, key.id, victim, Date.now() - 3_600_000),
        key.key,
      ),
      403,
      "invalid_identity_proof",
    );
    // No key, and a body that is not a proof.
    await expectError(
      await creditPost("link", await linkBody(victim, key.id)),
      401,
      "missing_api_key",
    );
    await expectError(await creditPost("link", { publicKey: "x" }, key.key), 400, "invalid_value");
    expect((await keyAccount(key.key)).identities).toEqual([]);

    const proof = await linkBody(victim, key.id);
    const res = await creditPost("link", proof, key.key);
    expect(res.status).toBe(200);
    const { public_id } = (await res.json()) as { public_id: string };
    // The same proof again is stale: an old proof cannot undo a newer link.
    await expectError(await creditPost("link", proof, key.key), 409, "stale_proof");
    expect((await keyAccount(key.key)).identities).toEqual([public_id]);
    expect((await keyAccount(other.key)).identities).toEqual([]);
  });
});

describe("credit buys a place in the queue", () => {
  it("a linked key with credit goes ahead of an earlier request without credit, and pays for it", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-queue"], { keys });
    await serveOne(tab, "cr-queue", 10);
    await balanceWhere(tab, (b) => b.earned === 10);
    const paid = await testKey();
    const base = await testKey();
    expect((await creditPost("link", await linkBody(keys, paid.id), paid.key)).status).toBe(200);
    expect(await keyAccount(paid.key)).toMatchObject({ balance: 10, available: 10 });

    // The only tab is busy; both keys ask for the interactive tier; the key without credit first.
    const busy = chat("cr-queue");
    const first = await tab.nextJob();
    tab.accept(first);
    const ask = (key: string, text: string) =>
      chat(
        "cr-queue",
        { max_tokens: 2, messages: [{ role: "user", content: text }] },
        { authorization: `Bearer ${key}`, "x-tabgrid-tier": "interactive" },
      );
    const baseRes = ask(base.key, "from the key without credit");
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(1));
    const paidRes = ask(paid.key, "from the key with credit");
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(2));
    // While it waits, the most it can cost (max_tokens 2 × 2 credits) is set aside.
    expect(await keyAccount(paid.key)).toMatchObject({ held: 4, available: 6 });

    tab.delta(first, 0, "busy");
    tab.done(first, "stop");
    const next = await tab.nextJob();
    expect(lastUserText(next)).toBe("from the key with credit");
    tab.serve(next, ["ok"], { completion_tokens: 2 });
    const last = await tab.nextJob();
    expect(lastUserText(last)).toBe("from the key without credit");
    tab.serve(last, ["ok"], { completion_tokens: 2 });
    for (const res of [busy, paidRes, baseRes]) expect((await res).status).toBe(200);

    // Charged 2 tokens × 2 credits (interactive) to the linked identity; nothing held any more.
    await vi.waitFor(async () =>
      expect((await ledgerStub(appEnv).balance(tab.nodeId)).spent).toBe(4),
    );
    expect(await keyAccount(paid.key)).toMatchObject({ held: 0 });
    // The base tier is free: the key without credit has nothing and was charged nothing.
    expect(await keyAccount(base.key)).toMatchObject({ balance: 0, held: 0 });
  });
});

describe("credit set aside is given back", () => {
  it("when the queue refuses the paid request, nothing stays held", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-full"], { keys });
    await serveOne(tab, "cr-full", 10);
    await balanceWhere(tab, (b) => b.earned === 10);
    const key = await testKey();
    expect((await creditPost("link", await linkBody(keys, key.id), key.key)).status).toBe(200);
    const busy = chat("cr-full");
    const first = await tab.nextJob();
    tab.accept(first);
    // The tests' queue holds 2 (QUEUE_CAPACITY in vitest.config.ts).
    const waiting = [chat("cr-full"), chat("cr-full")];
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(2));
    const refused = await chat(
      "cr-full",
      { max_tokens: 2 },
      { authorization: `Bearer ${key.key}`, "x-tabgrid-tier": "interactive" },
    );
    await expectError(refused, 429, "queue_full");
    expect(await keyAccount(key.key)).toMatchObject({ balance: 10, held: 0, available: 10 });
    tab.delta(first, 0, "busy");
    tab.done(first, "stop");
    for (let i = 0; i < 2; i++) tab.serve(await tab.nextJob(), ["ok"]);
    for (const r of [busy, ...waiting]) expect((await r).status).toBe(200);
  });
});

describe("latency tiers", () => {
  it("publishes the price table; refuses a tier without a key or with a bad name", async () => {
    const res = await SELF.fetch("http://tabgrid.test/v1/credits/tiers");
    const { data } = (await res.json()) as {
      data: Array<{ tier: string; price_per_token: number; latency_budget_ms: number | null }>;
    };
    expect(data).toEqual([
      expect.objectContaining({
        tier: "interactive",
        price_per_token: 2,
        latency_budget_ms: 10_000,
      }),
      expect.objectContaining({ tier: "batch", price_per_token: 1, latency_budget_ms: null }),
      expect.objectContaining({ tier: "base", price_per_token: 0 }),
    ]);
    await expectError(
      await chat("cr-tier", {}, { "x-tabgrid-tier": "interactive" }),
      401,
      "tier_needs_key",
    );
    const key = await testKey();
    await expectError(
      await chat("cr-tier", {}, { authorization: `Bearer ${key.key}`, "x-tabgrid-tier": "vip" }),
      400,
      "invalid_value",
    );
  });

  it("a tab earns the interactive weight only for a paid interactive place it served in budget", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-weight"], { keys });
    const key = await testKey();
    const interactive = { authorization: `Bearer ${key.key}`, "x-tabgrid-tier": "interactive" };
    // A key without credit asking for the tier: the base place and a budget, which cost nothing.
    await serveOne(tab, "cr-weight", 3, interactive);
    expect((await tab.next("job.credit")).credit).toBe(3);
    // A keyless budget of ten minutes, met: the batch weight too.
    const res = chat("cr-weight", { max_tokens: 5, tabgrid: { latency_budget_ms: 600_000 } });
    tab.serve(await tab.nextJob(), ["abcd"], { completion_tokens: 4 });
    expect((await res).status).toBe(200);
    expect((await tab.next("job.credit")).credit).toBe(4);
    await balanceWhere(tab, (b) => b.earned === 7);

    // The key, now linked, pays for the interactive place: 2 tokens × 2, earned as 2 × 2.
    expect((await creditPost("link", await linkBody(keys, key.id), key.key)).status).toBe(200);
    const busy = chat("cr-weight");
    const first = await tab.nextJob();
    tab.accept(first);
    const paid = chat("cr-weight", { max_tokens: 2 }, interactive);
    await vi.waitFor(async () => expect(await keyAccount(key.key)).toMatchObject({ held: 4 }));
    tab.delta(first, 0, "busy");
    tab.done(first, "stop");
    await tab.next("job.credit"); // the busy job's (a free one)
    tab.serve(await tab.nextJob(), ["ok"], { completion_tokens: 2 });
    for (const r of [busy, paid]) expect((await r).status).toBe(200);
    expect((await tab.next("job.credit")).credit).toBe(4);
  });

  it("a batch request that waited pays the batch price per token delivered", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-batch"], { keys });
    await serveOne(tab, "cr-batch", 10);
    await balanceWhere(tab, (b) => b.earned === 10);
    const key = await testKey();
    expect((await creditPost("link", await linkBody(keys, key.id), key.key)).status).toBe(200);
    const busy = chat("cr-batch");
    const first = await tab.nextJob();
    tab.accept(first);
    const res = chat(
      "cr-batch",
      { max_tokens: 5 },
      { authorization: `Bearer ${key.key}`, "x-tabgrid-tier": "batch" },
    );
    await vi.waitFor(async () => expect(await keyAccount(key.key)).toMatchObject({ held: 5 }));
    tab.delta(first, 0, "busy");
    tab.done(first, "stop");
    tab.serve(await tab.nextJob(), ["abc"], { completion_tokens: 3 });
    for (const r of [busy, res]) expect((await r).status).toBe(200);
    await vi.waitFor(async () =>
      expect((await ledgerStub(appEnv).balance(tab.nodeId)).spent).toBe(3),
    );
    expect(await keyAccount(key.key)).toMatchObject({ held: 0 });
  });
});

describe("the public top contributors", () => {
  it("shows public ids and opted-in, sanitized names in GET /v1/status", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["cr-top"], { keys });
    await serveOne(tab, "cr-top", 16);
    await balanceWhere(tab, (b) => b.earned === 16);
    const publicId = await publicNodeId(tab.nodeId);

    // Signed by someone else: refused.
    const forged = await nameBody(await newKeyPair(), "Mallory");
    forged.publicKey = (await nameBody(keys, "x")).publicKey;
    await expectError(await creditPost("name", forged), 403, "invalid_identity_proof");
    await expectError(await creditPost("name", await nameBody(keys, "<>/")), 400, "invalid_value");
    const res = await creditPost(
      "name",
      await nameBody(keys, `Ada <script>\u202e${"x".repeat(80)}`),
    );
    expect(res.status).toBe(200);
    const { name } = (await res.json()) as { name: string };
    expect(name).toBe(`Ada script${"x".repeat(22)}`);
    // The route needs no API key, so one identity renames at most once a minute.
    await expectError(
      await creditPost("name", await nameBody(keys, "Eve")),
      429,
      "rate_limit_exceeded",
    );

    forgetTopContributors();
    const status = (await (
      await SELF.fetch("http://tabgrid.test/v1/status")
    ).json()) as NetworkView;
    const row = status.top_contributors?.find((r) => r.public_id === publicId);
    expect(row).toEqual({ public_id: publicId, name, credits: 16, tokens: 16, jobs: 1 });
    // Never the identity itself.
    expect(JSON.stringify(status)).not.toContain(tab.nodeId);
  });
});
