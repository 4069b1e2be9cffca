import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import app from "../index.js";
import type { NetworkView, RegionView } from "../../shared/status/status-views.js";
import { honest, serveForever, spam } from "../../test/workerd/answering-tab.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { AUDIT_ALL, NO_CANARIES, bindingTab, withTrust } from "../../test/workerd/trust-helpers.js";
import { NO_NOISE } from "../../test/support/deterministic-engine.js";

/**
 * Verification health in the status API and /metrics (docs/status.md): a tab answering with spam
 * in region `afr` (Johannesburg, which no other test uses) is audited by an honest tab, confirmed
 * by a second one, and quarantined; /v1/status, /v1/status/regions and /metrics show the failed audit and the
 * quarantine, and regions without verification (TRUST=off for the other edge tests) show null.
 */

const tabs = useTabs();
const JOBURG = { lat: -26.2, lon: 28.05 };
const FROM_JOBURG = { "x-tabgrid-location": `${JOBURG.lat},${JOBURG.lon}` };
const TOKEN = "metrics-test-token-0123456789";

async function getJson<T>(path: string): Promise<T> {
  return (await (await SELF.fetch(`http://tabgrid.test${path}`)).json()) as T;
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("verification health", () => {
  it("shows audits passed and failed and quarantined tabs in /v1/status*, /metrics", async () => {
    await withTrust("afr", { ...AUDIT_ALL, ...NO_CANARIES });
    // Signed and trusted: its failing audit is binding (shared/trust/binding.ts), and quarantines
    // once a second such verifier confirms it (accusations.ts).
    const verifier = await bindingTab(tabs.tab, ["verif-status-model"], {
      region: "afr",
      loc: JOBURG,
    });
    // Noiseless scoring: with a GPU's everyday noise the liar's audit of the honest answer fails
    // now and then (a random seed per audit), and the counts below would vary between runs.
    serveForever(verifier, honest, NO_NOISE);
    const liar = await tabs.tab(["verif-status-model"], { loc: JOBURG });
    serveForever(liar, spam, NO_NOISE);
    // Two requests at once: each tab serves one, and each audits the other's answer.
    await Promise.all(
      [0, 1].map(async () =>
        streamText(await chat("verif-status-model", { stream: true }, FROM_JOBURG)),
      ),
    );
    // The second verifier joins after the answers: it re-checks the audit of the liar's answer.
    const confirmer = await bindingTab(tabs.tab, ["verif-status-model"], {
      region: "afr",
      loc: JOBURG,
    });
    serveForever(confirmer, honest, NO_NOISE);
    const regions = () => getJson<{ data: RegionView[] }>("/v1/status/regions").then((r) => r.data);
    const list = await until(regions, (l) => {
      const v = l.find((r) => r.region === "afr")?.verification;
      return !!v && v.audits.failed >= 2 && v.quarantined_tabs === 1;
    });
    const afr = list.find((r) => r.region === "afr")!;
    const v = afr.verification!;
    // The liar's answer failed its audit and the confirmation; the honest answer passed its audit
    // if the liar verified it before its quarantine (either order is possible).
    expect(v.audits.failed).toBe(2);
    expect(v.audits.passed).toBeLessThanOrEqual(1);
    expect(v).toMatchObject({
      canaries: { passed: 0, failed: 0 },
      quarantined_tabs: 1,
      quarantined_identities: 1,
    });
    // Regions that run no verification say so (null), not zero.
    expect(list.filter((r) => r.region !== "afr").every((r) => r.verification === null)).toBe(true);
    // The liar's audit of the honest answer may still be in flight, so "passed" may have grown.
    const network = await getJson<NetworkView>("/v1/status");
    expect(network.verification?.audits.failed).toBe(2);
    expect(network.verification?.audits.passed).toBeGreaterThanOrEqual(v.audits.passed);
    expect(network.verification?.audits.passed).toBeLessThanOrEqual(1);
    expect(network.verification?.quarantined_tabs).toBe(1);

    const res = await app.request(
      "/metrics",
      { headers: { authorization: `Bearer ${TOKEN}` } },
      { ...appEnv, METRICS_TOKEN: TOKEN },
    );
    const text = await res.text();
    expect(text).toContain("# TYPE tabgrid_audits_total counter");
    expect(text).toMatch(/^tabgrid_audits_total\{region="afr",result="passed"\} [01]$/m);
    expect(text).toContain('tabgrid_audits_total{region="afr",result="failed"} 2');
    expect(text).toContain('tabgrid_quarantined_tabs{region="afr"} 1');
  }, 20_000);
});
