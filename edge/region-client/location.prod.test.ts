import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";

describe("location header in production", () => {
  it("is ignored unless ALLOW_LOCATION_HEADER is on: a tab claiming Tokyo does not join apac", async () => {
    const t = await ScriptedTab.connect(["prod-geo"], undefined, { lat: 35.68, lon: 139.69 });
    const body = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
      data: Array<{ models: string[]; region: string }>;
    };
    const regions = body.data.filter((n) => n.models.includes("prod-geo")).map((n) => n.region);
    expect(regions).toHaveLength(1);
    expect(regions[0]).not.toBe("apac");
    t.close();
  });
});
