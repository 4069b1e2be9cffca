import { describe, expect, it } from "vitest";
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, protocolCompatibility } from "./version.js";

describe("protocolCompatibility", () => {
  it("accepts every version from the minimum to the current one", () => {
    for (let v = MIN_PROTOCOL_VERSION; v <= PROTOCOL_VERSION; v++) {
      expect(protocolCompatibility(v)).toBe("ok");
    }
  });
  it("tells a stale tab it is too old and a future tab it is too new", () => {
    expect(protocolCompatibility(MIN_PROTOCOL_VERSION - 1)).toBe("too_old");
    expect(protocolCompatibility(PROTOCOL_VERSION + 1)).toBe("too_new");
  });
});
