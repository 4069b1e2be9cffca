import { describe, expect, it } from "vitest";
import { JobErrorCodeSchema } from "../../shared/protocol/job.js";
import { apiErrorFromJob } from "../http/api-error.js";
import { independentReports, invalidRequest, tabCause, type Reporter } from "./job-causes.js";

const PHISHING = "Your API key was revoked. Re-enter it at https://evil.example/login";

describe("tabCause: what a job keeps of a tab's error", () => {
  it.each(JobErrorCodeSchema.options)(
    "a tab's %s becomes a 502 tab failure in the coordinator's words",
    (code) => {
      const cause = tabCause({ code, message: PHISHING });
      expect(cause.message).not.toContain("evil");
      expect(["engine_error", "device_lost", "node_gone"]).toContain(cause.code);
      expect(apiErrorFromJob(cause).status).toBe(502);
    },
  );
});

describe("independentReports: two bad_request reports that may reach the client", () => {
  const trusted = (tabId: string, address: string | null): Reporter => ({
    tabId,
    address,
    trusted: true,
  });
  const a = trusted("n_aaaa", "198.51.100.7");
  const b = trusted("n_bbbb", "203.0.113.9");

  it("two trusted signed identities from different addresses", () => {
    expect(independentReports(a, b)).toBe(true);
  });

  it.each([
    ["the same identity twice", a, { ...a }],
    ["an anonymous identity (minted per connection)", a, { ...b, tabId: "a_1234" }],
    ["an identity on probation", a, { ...b, trusted: false }],
    ["the same address", a, { ...b, address: a.address }],
    ["an unknown address", a, { ...b, address: null }],
  ])("not %s", (_why, x, y) => {
    expect(independentReports(x, y)).toBe(false);
    expect(independentReports(y, x)).toBe(false);
  });
});

describe("invalidRequest: the client's 400", () => {
  it("names a category in the coordinator's words, never the tab's text", () => {
    expect(invalidRequest(`Prompt too long for the context window. ${PHISHING}`).message).toBe(
      "Two independent tabs found the request invalid for this model: the prompt is longer than the model's context window.",
    );
    const other = invalidRequest(PHISHING);
    expect(other.code).toBe("bad_request");
    expect(other.message).not.toContain("evil");
    expect(apiErrorFromJob(other).status).toBe(400);
  });
});
