import { describe, expect, it } from "vitest";
import { hash32 } from "./hash32.js";

describe("hash32", () => {
  it("keeps its values across releases (tabs are placed on Region shards by it)", () => {
    // Values of the shard hash as first deployed (edge/region/shard-map.ts); a change would move
    // every tab to another shard at the next deploy.
    expect(hash32("")).toBe(2872998923);
    expect(hash32("203.0.113.9")).toBe(521688807);
    expect(hash32("2001:db8::1")).toBe(3849813818);
  });
});
