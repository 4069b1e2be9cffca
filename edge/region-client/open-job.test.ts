import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { ModelListSchema } from "../../shared/openai/models.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { chat, tabRegions, useTabs } from "../../test/workerd/tab-helpers.js";

const FRANKFURT = { lat: 50.11, lon: 8.68 };
const LONDON = { lat: 51.51, lon: -0.13 };
const MADRID = { lat: 40.42, lon: -3.7 };
const PARIS = { lat: 48.86, lon: 2.35 };
const DUBLIN = { lat: 53.35, lon: -6.26 };
const NEW_YORK = { lat: 40.71, lon: -74.01 };
const TOKYO = { lat: 35.68, lon: 139.69 };

const tabs = useTabs();
const tabAt = (models: string[], loc: { lat: number; lon: number }) => tabs.tab(models, { loc });

/** A chat request from a client at `loc` (the location header is honoured in tests). */
function chatFrom(
  loc: { lat: number; lon: number },
  model: string,
  headers: Record<string, string> = {},
  extra: object = {},
) {
  return chat(model, extra, { "x-tabgrid-location": `${loc.lat},${loc.lon}`, ...headers });
}

describe("regions", () => {
  it("a tab joins the region nearest to it and serves clients near it from there", async () => {
    const t = await tabAt(["geo-a"], FRANKFURT);
    expect(await tabRegions("geo-a")).toEqual(["weur"]);
    const resP = chatFrom(PARIS, "geo-a", { "x-tabgrid-place": "Paris, FR" });
    const job = await t.nextJob();
    // The contributor learns roughly where its client is (city level).
    expect(job.clientPlace).toBe("Paris, FR");
    t.serve(job, ["bonjour"]);
    const res = await resP;
    expect(res.headers.get("x-tabgrid-region")).toBe("weur");
    expect(ChatCompletionSchema.parse(await res.json()).choices[0]?.message.content).toBe(
      "bonjour",
    );
  });

  it("within a region the tab with the lowest expected time to first token gets the job", async () => {
    const london = await tabAt(["geo-b"], LONDON);
    const madrid = await tabAt(["geo-b"], MADRID);
    const resP = chatFrom(DUBLIN, "geo-b");
    const first = await Promise.race([
      london.nextJob().then((job) => ({ who: "london", tab: london, job })),
      madrid.nextJob().then((job) => ({ who: "madrid", tab: madrid, job })),
    ]);
    expect(first.who).toBe("london");
    first.tab.serve(first.job, ["hello from London"]);
    expect((await resP).status).toBe(200);

    // With fresh tabs (nothing learned yet), a client in Lisbon is nearer Madrid.
    const london2 = await tabAt(["geo-b2"], LONDON);
    const madrid2 = await tabAt(["geo-b2"], MADRID);
    const back = chatFrom({ lat: 38.72, lon: -9.14 }, "geo-b2");
    const second = await Promise.race([
      london2.nextJob().then((job) => ({ who: "london", tab: london2, job })),
      madrid2.nextJob().then((job) => ({ who: "madrid", tab: madrid2, job })),
    ]);
    expect(second.who).toBe("madrid");
    second.tab.serve(second.job, ["hola"]);
    expect((await back).status).toBe(200);
  });

  it("spills over to the next-nearest region that has an idle tab", async () => {
    const t = await tabAt(["geo-c"], NEW_YORK);
    expect(await tabRegions("geo-c")).toEqual(["enam"]);
    const resP = chatFrom(LONDON, "geo-c");
    t.serve(await t.nextJob(), ["from across the ocean"]);
    const res = await resP;
    expect(res.headers.get("x-tabgrid-region")).toBe("enam");
    expect(res.status).toBe(200);
  });

  it("GET /v1/models sums what every region's tabs serve", async () => {
    await tabAt(["geo-d"], FRANKFURT);
    await tabAt(["geo-d"], TOKYO);
    const list = ModelListSchema.parse(
      await (await SELF.fetch("http://tabgrid.test/v1/models")).json(),
    );
    expect(list.data.find((m) => m.id === "geo-d")?.tabgrid).toEqual({ nodes: 2, idle: 2 });
  });
});

describe("latency budget", () => {
  it("tabs that cannot meet the budget are skipped: 503 naming the budget when none can", async () => {
    await tabAt(["geo-e"], TOKYO);
    const res = await chatFrom(LONDON, "geo-e", { "x-tabgrid-latency-budget-ms": "5" });
    expect(res.status).toBe(503);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.code).toBe("latency_budget_unmet");
    expect(body.error.message).toContain("5 ms");
  });

  it("a budget the tab can meet is served, from the body field too", async () => {
    const t = await tabAt(["geo-f"], LONDON);
    const resP = chatFrom(LONDON, "geo-f", {}, { tabgrid: { latency_budget_ms: 60_000 } });
    t.serve(await t.nextJob(), ["in time"]);
    expect((await resP).status).toBe(200);
  });

  it("the budget header has the body field's bound: past 10 minutes it is a 400 too", async () => {
    const refused = async (headers: Record<string, string>, extra: object = {}) => {
      const res = await chatFrom(LONDON, "geo-h", headers, extra);
      return {
        status: res.status,
        param: OpenAIErrorBodySchema.parse(await res.json()).error.param,
      };
    };
    const header = "x-tabgrid-latency-budget-ms";
    expect(await refused({ [header]: "1e300" })).toEqual({ status: 400, param: header });
    expect(await refused({ [header]: "600001" })).toEqual({ status: 400, param: header });
    expect(await refused({}, { tabgrid: { latency_budget_ms: 600_001 } })).toEqual({
      status: 400,
      param: "tabgrid.latency_budget_ms",
    });
    const t = await tabAt(["geo-h"], LONDON);
    const resP = chatFrom(LONDON, "geo-h", { [header]: "600000" });
    t.serve(await t.nextJob(), ["in time"]);
    expect((await resP).status).toBe(200);
  });

  it("a malformed budget header is a 400 naming it", async () => {
    const res = await chatFrom(LONDON, "geo-g", { "x-tabgrid-latency-budget-ms": "soon" });
    expect(res.status).toBe(400);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.param).toBe(
      "x-tabgrid-latency-budget-ms",
    );
  });
});
