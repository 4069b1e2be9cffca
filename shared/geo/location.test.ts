import { describe, expect, it } from "vitest";
import { locationFromCf, parseLocationHeader } from "./location.js";

describe("parseLocationHeader", () => {
  it("parses lat,lon with optional spaces and signs", () => {
    expect(parseLocationHeader("51.5074,-0.1278")).toEqual({ lat: 51.5074, lon: -0.1278 });
    expect(parseLocationHeader(" -33.87 , 151.21 ")).toEqual({ lat: -33.87, lon: 151.21 });
    expect(parseLocationHeader("90,-180")).toEqual({ lat: 90, lon: -180 });
  });

  it.each([
    null,
    undefined,
    "",
    "51.5",
    "1,2,3",
    "abc,def",
    "1e1,2",
    "0x10,2",
    "91,0",
    "0,180.5",
    ",",
    "NaN,NaN",
    "Infinity,0",
  ])("rejects %o", (value) => {
    expect(parseLocationHeader(value)).toBeNull();
  });
});

describe("locationFromCf", () => {
  it("reads string coordinates and the labels request.cf carries", () => {
    expect(
      locationFromCf({
        latitude: "52.52",
        longitude: "13.40",
        colo: "TXL",
        country: "DE",
        continent: "EU",
      }),
    ).toEqual({ lat: 52.52, lon: 13.4, colo: "TXL", country: "DE", continent: "EU" });
  });

  it("returns null without usable coordinates", () => {
    expect(locationFromCf(undefined)).toBeNull();
    expect(locationFromCf({ colo: "LHR" })).toBeNull();
    expect(locationFromCf({ latitude: "100", longitude: "0" })).toBeNull();
  });
});
