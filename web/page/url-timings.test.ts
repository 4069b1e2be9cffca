import { describe, expect, it } from "vitest";
import { statusPollMs } from "./url-timings.js";

describe("statusPollMs (/status?poll-ms=)", () => {
  it("polls every 5 s unless the URL asks for another interval", () => {
    expect(statusPollMs("")).toBe(5000);
    expect(statusPollMs("?poll-ms=500")).toBe(500);
    expect(statusPollMs("?poll-ms=nonsense")).toBe(5000);
  });

  it("never polls more often than every half second, nor waits over 10 minutes", () => {
    expect(statusPollMs("?poll-ms=1")).toBe(500);
    expect(statusPollMs("?poll-ms=0.001")).toBe(500);
    expect(statusPollMs("?poll-ms=1e12")).toBe(600_000);
  });
});
