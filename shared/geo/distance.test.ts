import { describe, expect, it } from "vitest";
import { FIBRE_KM_PER_MS_RTT, haversineKm, networkRttMs } from "./distance.js";

const london = { lat: 51.5074, lon: -0.1278 };
const newYork = { lat: 40.7128, lon: -74.006 };
const sydney = { lat: -33.8688, lon: 151.2093 };
const tokyo = { lat: 35.6762, lon: 139.6503 };

describe("haversineKm", () => {
  it("matches known great-circle distances", () => {
    expect(haversineKm(london, newYork)).toBeGreaterThan(5560);
    expect(haversineKm(london, newYork)).toBeLessThan(5580);
    expect(haversineKm(sydney, tokyo)).toBeGreaterThan(7780);
    expect(haversineKm(sydney, tokyo)).toBeLessThan(7840);
  });

  it("is zero for the same point and symmetric", () => {
    expect(haversineKm(london, london)).toBe(0);
    expect(haversineKm(london, sydney)).toBeCloseTo(haversineKm(sydney, london), 9);
  });

  it("handles the antimeridian and antipodes", () => {
    // 1° of longitude across the date line on the equator is ~111 km, not ~40,000 km.
    expect(haversineKm({ lat: 0, lon: 179.5 }, { lat: 0, lon: -179.5 })).toBeCloseTo(111.2, 0);
    // Half the circumference.
    expect(haversineKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 })).toBeCloseTo(20015, -1);
  });
});

describe("networkRttMs", () => {
  it("divides distance by 48 km per ms and adds the access delay", () => {
    expect(FIBRE_KM_PER_MS_RTT).toBe(48);
    expect(networkRttMs(4800, 0)).toBe(100);
    expect(networkRttMs(480, 15)).toBe(25);
    // London–New York: about 116 ms of round trip before access delays, near what is measured.
    const rtt = networkRttMs(haversineKm(london, newYork), 0);
    expect(rtt).toBeGreaterThan(110);
    expect(rtt).toBeLessThan(120);
  });
});
