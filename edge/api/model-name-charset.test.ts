import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { ModelView } from "../../shared/status/status-views.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * "Trust no tab": a tab chose any model name of 1–200 UTF-16 units (node-messages.ts `modelList`
 * had no charset), and the listings published up to MAX_LISTED_OTHER_MODELS such names verbatim
 * as model ids (GET /v1/models, /v1/status/models, /metrics labels), while ids the operator hosts
 * had to match a strict pattern. Markup, control and bidi characters reached every API consumer
 * that shows the model list. Now a tab's model names are model ids (shared/models/model-id.ts) and
 * a hello with any other is refused like any frame outside its schema.
 */
const tabs = useTabs();
const ORIGIN = "http://tabgrid.test";
const EVIL = 'mnc-x"><img src=x onerror=alert(1)>\u202e\n\u0000';
const PLAIN = "mnc-plain-model";
/** The pattern hosted model ids must match (model-catalog.ts HostedModelSchema). */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

async function listedIds(): Promise<{ ids: string[]; status: string[] }> {
  const ids = (
    (await (await SELF.fetch(`${ORIGIN}/v1/models`)).json()) as { data: Array<{ id: string }> }
  ).data.map((m) => m.id);
  const status = (
    (await (await SELF.fetch(`${ORIGIN}/v1/status/models`)).json()) as { data: ModelView[] }
  ).data.map((m) => m.id);
  return { ids, status };
}

describe("model ids tabs announce", () => {
  it("are listed only when they are plain model ids", async () => {
    // The tab with the evil name says hello first; a plain tab after it, in the same Region
    // object, whose name in the listings shows that they include what that object reported.
    const evil = await ScriptedTab.open();
    tabs.list.push(evil);
    const outcome = await Promise.race([
      evil.handshake({ models: [EVIL] }).then(() => "welcomed"),
      evil.closed,
    ]);
    await tabs.tab([PLAIN]);
    await expect
      .poll(async () => (await listedIds()).ids.includes(PLAIN), { timeout: 5000 })
      .toBe(true);
    const { ids, status } = await listedIds();
    const unsafe = [...ids, ...status].filter((id) => !SAFE_ID.test(id));
    expect(unsafe).toEqual([]);
    // Refused with the protocol's typed close, as any frame outside its schema.
    expect(outcome).toMatchObject({ code: CloseCode.BadFrame });
    expect((outcome as { reason: string }).reason).toMatch(/^models\.0: /);
  });

  it("a client naming such a model gets 404 model_not_found, and the name is listed nowhere", async () => {
    await tabs.tab([PLAIN]);
    const res = await chat(EVIL);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
    await expect
      .poll(async () => (await listedIds()).ids.includes(PLAIN), { timeout: 5000 })
      .toBe(true);
    const { ids, status } = await listedIds();
    expect([...ids, ...status].filter((id) => !SAFE_ID.test(id))).toEqual([]);
  });
});
