import { describe, expect, it } from "vitest";
import { REGION_HINTS, isRegionHint, nearestRegion, regionsByDistance } from "./regions.js";

describe("regions", () => {
  it("has the nine Cloudflare location hints", () => {
    expect([...REGION_HINTS].sort()).toEqual(
      ["afr", "apac", "eeur", "enam", "me", "oc", "sam", "weur", "wnam"].sort(),
    );
    expect(isRegionHint("weur")).toBe(true);
    expect(isRegionHint("mars")).toBe(false);
  });

  it.each([
    [{ lat: 51.5074, lon: -0.1278 }, "weur"], // London
    [{ lat: 40.7128, lon: -74.006 }, "enam"], // New York
    [{ lat: 47.6062, lon: -122.3321 }, "wnam"], // Seattle
    [{ lat: -34.6037, lon: -58.3816 }, "sam"], // Buenos Aires
    [{ lat: 50.4501, lon: 30.5234 }, "eeur"], // Kyiv
    [{ lat: 35.6762, lon: 139.6503 }, "apac"], // Tokyo
    [{ lat: -37.8136, lon: 144.9631 }, "oc"], // Melbourne
    [{ lat: -1.2921, lon: 36.8219 }, "afr"], // Nairobi
    [{ lat: 24.7136, lon: 46.6753 }, "me"], // Riyadh
  ] as const)("routes %o to %s", (loc, region) => {
    expect(nearestRegion(loc)).toBe(region);
  });

  it("orders all regions nearest first, starting with the nearest region", () => {
    const paris = { lat: 48.8566, lon: 2.3522 };
    const order = regionsByDistance(paris);
    expect(order).toHaveLength(9);
    expect(order[0]?.region).toBe(nearestRegion(paris));
    expect(order.map((r) => r.region).slice(0, 2)).toEqual(["weur", "eeur"]);
    for (let i = 1; i < order.length; i++) {
      expect(order[i]!.distanceKm).toBeGreaterThanOrEqual(order[i - 1]!.distanceKm);
    }
    expect(order[order.length - 1]?.region).toBe("oc");
  });
});
