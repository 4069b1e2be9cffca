import { describe, expect, it } from "vitest";
import { REGION_HINTS, type RegionHint } from "../../shared/geo/regions.js";
import { mergeOffers, type ModelOffer } from "../../shared/scheduling/spillover.js";
import type { DirectorySnapshot, RoutingView } from "../directory/directory-do.js";
import { parseShard } from "../region/shard-name.js";
import { groupByHint, hintRows } from "./hint-rows.js";
import { hintOffer } from "./open-job.js";
import { hintCapacity } from "./shard-routing.js";

type Row = DirectorySnapshot[string];

const point = (fixedMs: number) => ({
  lat: 50,
  lon: 8,
  fixedMs,
  prefillTps: 500,
  decodeTps: 30,
  freeAtMs: 0,
  coldMs: 0,
});
const offer = (fixedMs: number, lineStartMs: number): ModelOffer => ({
  points: [point(fixedMs)],
  lineStartMs,
  lineTab: point(fixedMs + 1),
});
const row = (nodes: number, offers: Record<string, ModelOffer>): Row => ({
  models: { m: { nodes, idle: nodes } },
  nodes,
  queued: 0,
  offers,
  updatedAt: 0,
});

/**
 * A view as the Directory returns it: several shards per hint, in an order that interleaves
 * hints (rows come in SQL order), shards `wnam/3` and `-` forms, and a name that is no shard.
 */
function snapshot(): DirectorySnapshot {
  return {
    "weur/1": row(2, { m: offer(30, 2000) }),
    wnam: row(1, { m: offer(80, 1000), other: offer(5, 0) }),
    weur: row(3, { m: offer(20, 3000) }),
    "wnam/3": row(0, {}),
    "wnam/2": row(4, { m: offer(70, 900) }),
    "apac-5": row(1, { m: offer(10, 10) }),
    legacy: row(9, { m: offer(1, 1) }),
    eeur: row(1, {}),
  };
}

/** hintOffer as it was: every name filtered per hint per call. */
const filtered = (view: RoutingView, hint: RegionHint, model: string) =>
  mergeOffers(
    Object.entries(view.summaries)
      .filter(([name]) => parseShard(name)?.hint === hint)
      .map(([, r]) => r.offers?.[model]),
  );

describe("a routing view's summaries grouped by hint", () => {
  it("gives each hint its shards' rows in the view's order, and no hint a non-shard name", () => {
    const s = snapshot();
    const byHint = groupByHint(s);
    expect(byHint.get("wnam")).toEqual([s["wnam"], s["wnam/3"], s["wnam/2"]]);
    expect(byHint.get("weur")).toEqual([s["weur/1"], s["weur"]]);
    expect(byHint.get("apac")).toEqual([s["apac-5"]]);
    expect([...byHint.values()].flat()).not.toContain(s["legacy"]);
    expect(hintRows(s, "oc")).toEqual([]);
  });

  it("leaves each hint's offer and capacity exactly as filtering every name gave them", () => {
    const view: RoutingView = { summaries: snapshot(), shards: {} };
    for (const hint of REGION_HINTS)
      for (const model of ["m", "other", "absent"]) {
        expect(hintOffer(view, hint, model)).toEqual(filtered(view, hint, model));
        const nodes = Object.entries(view.summaries)
          .filter(([name]) => parseShard(name)?.hint === hint)
          .reduce((n, [, r]) => n + (r.models[model]?.nodes ?? 0), 0);
        expect(hintCapacity(view.summaries, hint, model).nodes).toBe(nodes);
      }
  });

  it("reads a view's names once however many hints and requests ask", () => {
    let reads = 0;
    const summaries = new Proxy(snapshot(), {
      ownKeys(target) {
        reads += 1;
        return Reflect.ownKeys(target);
      },
    });
    const view: RoutingView = { summaries, shards: {} };
    for (let request = 0; request < 3; request++)
      for (const hint of REGION_HINTS) {
        hintOffer(view, hint, "m");
        hintCapacity(summaries, hint, "m");
      }
    expect(reads).toBe(1);
  });

  it("groups a new read of the view afresh (a tab that just joined is seen)", () => {
    const before = snapshot();
    expect(hintOffer({ summaries: before, shards: {} }, "eeur", "m")).toBeUndefined();
    const after = { ...before, "eeur/1": row(1, { m: offer(15, 5) }) };
    expect(hintOffer({ summaries: after, shards: {} }, "eeur", "m")).toEqual(offer(15, 5));
  });
});
