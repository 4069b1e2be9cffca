import { runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CoordinatorMessageSchema, parseFrame } from "../../shared/protocol/node-messages.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { NetworkView, RegionView } from "../../shared/status/status-views.js";
import { AlertReceiver } from "../../test/workerd/alert-receiver.js";
import { honest, serveForever, spam } from "../../test/workerd/answering-tab.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { AUDIT_ALL, NO_CANARIES, bindingTab, withTrust } from "../../test/workerd/trust-helpers.js";
import { directoryStub } from "../directory/directory-client.js";
import type { DirectoryDurableObject } from "../directory/directory-do.js";
import type { AlertConfig } from "./alert-config.js";

/**
 * The alert webhook (docs/status.md: Alerts) against a local receiver (test/workerd/alert-receiver.ts,
 * which checks each call's HMAC signature): each alert fires once when its condition starts and
 * sends one `resolved` when it clears, from what real tabs and jobs made the regions report. The
 * Directory's alarm is run with `runDurableObjectAlarm`; its clock is moved forward by the test
 * (minutes pass without waiting). Tabs are in region `me` (Dubai), which no other test uses.
 */

const tabs = useTabs();
const DUBAI = { lat: 25.2, lon: 55.27 };
const FROM_DUBAI = { "x-tabgrid-location": `${DUBAI.lat},${DUBAI.lon}` };
const SECRET = "alert-test-secret-0123456789";

/** The Directory's clock runs ahead of real time by `ahead`, which only grows across the file. */
let ahead = 0;
const clock = () => Date.now() + ahead;
const later = (ms: number) => (ahead += ms);

const BASE: AlertConfig = {
  url: "https://alerts.example.org/hook",
  secret: SECRET,
  noTabMs: 5 * 60_000,
  watchModels: [],
  ttftP95Ms: 60_000,
  ttftMinSamples: 1_000,
  auditFailRate: 1.1, // off unless a test sets it
  auditMinAudits: 1,
  auditWindowMs: 10 * 60_000,
  // Longer than the file runs, so the real alarm never fires between the test's own runs.
  checkMs: 3_600_000,
  timeoutMs: 300,
};

async function configure(receiver: AlertReceiver, config: Partial<AlertConfig>): Promise<void> {
  await runInDurableObject(directoryStub(appEnv), async (obj: DirectoryDurableObject) => {
    obj.alerts.config = { ...BASE, ...config };
    obj.alerts.transport = receiver.transport;
    obj.clock = clock;
    await obj.armAlerts();
  });
}

/** One run of the Directory's alarm (the alert check). */
async function check(): Promise<void> {
  expect(await runDurableObjectAlarm(directoryStub(appEnv))).toBe(true);
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function getJson<T>(path: string): Promise<T> {
  return (await (await SELF.fetch(`http://tabgrid.test${path}`)).json()) as T;
}
const modelNodes = async (id: string) =>
  (await getJson<{ data: { id: string; nodes: number }[] }>("/v1/status/models")).data.find(
    (m) => m.id === id,
  )?.nodes ?? 0;
const me = async () =>
  (await getJson<{ data: RegionView[] }>("/v1/status/regions")).data.find((r) => r.region === "me");

describe("alert webhook", () => {
  it("a model without a serving tab for N minutes fires once, and resolves when a tab serves it", async () => {
    const receiver = new AlertReceiver(SECRET, clock);
    await configure(receiver, { noTabMs: 5 * 60_000 });
    const key = "model_unserved:alert-model-a";
    const first = await tabs.tab(["alert-model-a"], { loc: DUBAI });
    await until(
      () => modelNodes("alert-model-a"),
      (n) => n === 1,
    );
    await check(); // served: remembered, nothing sent
    first.close();
    await until(
      () => modelNodes("alert-model-a"),
      (n) => n === 0,
    );
    later(4 * 60_000);
    await check(); // 4 minutes without a tab: under the threshold
    expect(receiver.of(key)).toEqual([]);
    later(2 * 60_000);
    await check();
    expect(receiver.of(key)).toEqual(["firing"]);
    const event = receiver.events.find((e) => e.key === key)!;
    expect(event).toMatchObject({
      type: "tabgrid.alert",
      version: 1,
      alert: "model_unserved",
      subject: { model: "alert-model-a" },
      resolved_at: null,
    });
    expect(event.summary).toMatch(/No tab serves alert-model-a/);
    later(60_000);
    await check(); // still unserved: once per episode
    expect(receiver.of(key)).toEqual(["firing"]);

    await tabs.tab(["alert-model-a"], { loc: DUBAI });
    await until(
      () => modelNodes("alert-model-a"),
      (n) => n === 1,
    );
    await check();
    expect(receiver.of(key)).toEqual(["firing", "resolved"]);
    const resolved = receiver.events.filter((e) => e.key === key)[1]!;
    expect(resolved.started_at).toBe(event.started_at);
    expect(resolved.resolved_at).not.toBeNull();
    expect(receiver.rejected).toEqual([]);
  }, 20_000);

  it("p95 time to first token in a region above the threshold fires, and resolves when the window clears", async () => {
    const receiver = new AlertReceiver(SECRET, clock);
    await configure(receiver, { ttftP95Ms: 200, ttftMinSamples: 3 });
    const key = "ttft_p95_high:me";
    const before = (await me())?.windows["5m"].requests ?? 0;
    const tab = await tabs.tab(["alert-model-slow"], { loc: DUBAI });
    for (let i = 0; i < 3; i++) {
      const res = chat("alert-model-slow", { stream: true }, FROM_DUBAI);
      const job = await tab.nextJob();
      tab.accept(job);
      await new Promise((r) => setTimeout(r, 400)); // a slow first token
      tab.delta(job, 0, "slow");
      tab.done(job, "stop", { completion_tokens: 1 });
      await streamText(await res);
    }
    await until(me, (r) => (r?.windows["5m"].requests ?? 0) >= before + 3);
    await check();
    expect(receiver.of(key)).toEqual(["firing"]);
    const event = receiver.events.find((e) => e.key === key)!;
    expect(event.alert).toBe("ttft_p95_high");
    expect(event.subject).toEqual({ region: "me" });
    expect(Number(event.details.p95_ms)).toBeGreaterThan(200);
    await check();
    expect(receiver.of(key)).toEqual(["firing"]);
    // Five minutes on, the slow first tokens are out of the window.
    later(6 * 60_000);
    await check();
    expect(receiver.of(key)).toEqual(["firing", "resolved"]);
  }, 20_000);

  it("a jump in the audit failure rate fires, and resolves when audits pass again", async () => {
    const receiver = new AlertReceiver(SECRET, clock);
    await configure(receiver, {
      auditFailRate: 0.25,
      auditMinAudits: 1,
      auditWindowMs: 10 * 60_000,
    });
    const key = "audit_failures:network";
    await withTrust("me", { ...AUDIT_ALL, ...NO_CANARIES });
    const verification = async () => (await getJson<NetworkView>("/v1/status")).verification;
    // A verifier that answers honestly, then a tab that answers with spam.
    // Signed and trusted: its failing audit is binding (shared/trust/binding.ts), and quarantines
    // once a second such verifier confirms it (accusations.ts).
    const verifier = await bindingTab(tabs.tab, ["alert-model-audit"], {
      region: "me",
      loc: DUBAI,
    });
    serveForever(verifier, honest);
    await until(
      () => modelNodes("alert-model-audit"),
      (n) => n === 1,
    );
    await check(); // the rate before: no audits
    const liar = await tabs.tab(["alert-model-audit"], { loc: DUBAI });
    serveForever(liar, spam);
    // The verifier is busy with this first request, so the liar gets the second.
    const busy = chat("alert-model-audit", { stream: true }, FROM_DUBAI);
    const spammed = chat("alert-model-audit", { stream: true }, FROM_DUBAI);
    await Promise.all([busy, spammed].map(async (r) => streamText(await r)));
    await until(verification, (x) => (x?.audits.failed ?? 0) >= 1);
    const confirmer = await bindingTab(tabs.tab, ["alert-model-audit"], {
      region: "me",
      loc: DUBAI,
    });
    serveForever(confirmer, honest);
    const v = await until(verification, (x) => (x?.quarantined_tabs ?? 0) >= 1);
    expect(v?.audits.failed).toBeGreaterThanOrEqual(2);
    expect(v?.quarantined_tabs).toBeGreaterThanOrEqual(1);
    later(60_000);
    await check();
    expect(receiver.of(key)).toEqual(["firing"]);
    expect(receiver.events.find((e) => e.key === key)?.summary).toMatch(/answer audits failed/);

    // Honest answers from here on (the liar is quarantined and gets no jobs): a second honest tab
    // audits the first one's answers.
    const second = await tabs.tab(["alert-model-audit"], { loc: DUBAI });
    serveForever(second, honest);
    const passedBefore = v?.audits.passed ?? 0;
    for (let i = 0; i < 4; i++)
      await streamText(await chat("alert-model-audit", { stream: true }, FROM_DUBAI));
    await until(verification, (x) => (x?.audits.passed ?? 0) >= passedBefore + 4);
    later(11 * 60_000); // the failure is out of the window
    await check();
    expect(receiver.of(key)).toEqual(["firing", "resolved"]);
  }, 20_000);

  it("is bounded: a receiver that hangs is given up after the timeout, each call tried three times", async () => {
    const receiver = new AlertReceiver(SECRET, clock);
    receiver.mode = "hang";
    const key = "model_unserved:alert-model-never";
    await configure(receiver, { watchModels: ["alert-model-never"], noTabMs: 0, timeoutMs: 300 });
    const t0 = Date.now();
    await check(); // fires; the call hangs and is abandoned after the timeout
    expect(Date.now() - t0).toBeLessThan(3000);
    const sent = receiver.calls.length;
    expect(sent).toBe(1);
    await check(); // its retry is not due yet: nothing is sent
    expect(receiver.calls.length).toBe(sent);
    // Later checks retry with doubling delays (one call per check while it fails), then drop it.
    for (let i = 0; i < 20; i++) {
      later(BASE.checkMs * 8);
      await check();
    }
    // Tries per call (the delivery id is `<call>-<attempt>`): three each, then dropped.
    const tries = new Map<string, number>();
    for (const c of receiver.calls) {
      const call = c.delivery.split("-")[0]!;
      tries.set(call, (tries.get(call) ?? 0) + 1);
    }
    expect(receiver.calls.filter((c) => c.key === key).length).toBe(3);
    expect([...tries.values()]).toEqual([...tries.values()].map(() => 3));
    expect(receiver.events).toEqual([]);
    // The episode stays open (once per episode): a receiver that is back gets no new call for it.
    receiver.mode = "up";
    later(BASE.checkMs);
    await check();
    expect(receiver.of(key)).toEqual([]);
  }, 20_000);
});
