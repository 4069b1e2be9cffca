import { describe, expect, it } from "vitest";
import { alertConfig } from "./alert-config.js";

/** The alert settings an operator gives (docs/status.md: Alerts): off unless both secrets are sound. */
const SECRET = "a-long-enough-secret";

describe("alert settings", () => {
  it("are off without a URL, with a URL that is not http(s), or with a short secret", () => {
    expect(alertConfig({})).toBeNull();
    expect(alertConfig({ ALERT_WEBHOOK_SECRET: SECRET })).toBeNull();
    expect(
      alertConfig({ ALERT_WEBHOOK_URL: "ftp://x.example", ALERT_WEBHOOK_SECRET: SECRET }),
    ).toBeNull();
    expect(
      alertConfig({ ALERT_WEBHOOK_URL: "not a url", ALERT_WEBHOOK_SECRET: SECRET }),
    ).toBeNull();
    expect(
      alertConfig({ ALERT_WEBHOOK_URL: "https://x.example/h", ALERT_WEBHOOK_SECRET: "short" }),
    ).toBeNull();
  });

  it("read thresholds in the documented units, with defaults and bounds", () => {
    const c = alertConfig({
      ALERT_WEBHOOK_URL: "https://ops.example.org/hook",
      ALERT_WEBHOOK_SECRET: SECRET,
      ALERT_NO_TAB_MINUTES: "10",
      ALERT_MODELS: " a-model , ,b-model",
      ALERT_TTFT_P95_MS: "2500",
      ALERT_AUDIT_FAIL_RATE: "7", // a share: capped at 1
      ALERT_CHECK_SECONDS: "1", // at least 5 s
    })!;
    expect(c).toMatchObject({
      url: "https://ops.example.org/hook",
      noTabMs: 600_000,
      watchModels: ["a-model", "b-model"],
      ttftP95Ms: 2500,
      ttftMinSamples: 5,
      auditFailRate: 1,
      auditMinAudits: 5,
      auditWindowMs: 15 * 60_000,
      checkMs: 5000,
      timeoutMs: 5000,
    });
    expect(
      alertConfig({
        ALERT_WEBHOOK_URL: "https://x.example",
        ALERT_WEBHOOK_SECRET: SECRET,
        ALERT_TTFT_P95_MS: "abc",
      })?.ttftP95Ms,
    ).toBe(5000);
  });
});
