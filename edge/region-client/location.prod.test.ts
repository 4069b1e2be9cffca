import { describe, expect, it } from "vitest";
import { tabRegions, useTabs } from "../../test/workerd/tab-helpers.js";

const tabs = useTabs();

describe("location header in production", () => {
  it("is ignored unless ALLOW_LOCATION_HEADER is on: a tab claiming Tokyo does not join apac", async () => {
    await tabs.tab(["prod-geo"], { loc: { lat: 35.68, lon: 139.69 } });
    const regions = await tabRegions("prod-geo");
    expect(regions).toHaveLength(1);
    expect(regions[0]).not.toBe("apac");
  });
});
