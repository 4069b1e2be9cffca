import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  pastProbation,
  within,
  withTrust,
} from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * Who re-scores an answer (audits.ts `pickVerifier`): a trusted verifier before one in probation,
 * whatever GPU class either claims. The class is the tab's own word (its hello); before, another
 * class counted more than trust, so any new identity claiming a class other than the subject's
 * was sent the audit ahead of every trusted tab of the subject's class.
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");

function setState(t: ScriptedTab, state: "busy" | "idle", model = "vc-pick"): Promise<void> {
  t.send({ type: "status", state, models: [model] });
  return expect
    .poll(() =>
      runInDurableObject(stub(), (obj) => {
        const { parts } = obj as unknown as { parts: RegionParts };
        return parts.tabs.get(t.nodeId)?.state;
      }),
    )
    .toBe(state);
}

describe("the verifier an audit goes to", () => {
  it("is a trusted tab rather than a new one that claims another GPU class", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const trusted = await tab(["vc-pick"]);
    const claimer = await tab(["vc-pick"]);
    await pastProbation("wnam", trusted.nodeId);
    await runInDurableObject(stub(), (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      const record = parts.tabs.get(claimer.nodeId)!;
      record.gpu = { class: "high" } as NonNullable<typeof record.gpu>;
    });
    // Both busy while the subject takes the job, both idle when its answer is audited.
    await setState(trusted, "busy");
    await setState(claimer, "busy");
    const subject = await tab(["vc-pick"]);
    const res = chat("vc-pick");
    const job = await subject.nextJob();
    await setState(trusted, "idle");
    await setState(claimer, "idle");
    subject.serve(job, ["Hello there, how can I help?"], { completion_tokens: 7 });
    expect((await res).status).toBe(200);

    await within(trusted.next("audit.assign"), 5_000, "the audit reaching the trusted tab");
    expect(claimer.received.filter((m) => m.type === "audit.assign")).toEqual([]);
  }, 15_000);

  it("is one that says it has a GPU rather than one that may score on the CPU (an hour and a half)", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const cpu = await tab(["vc-gpu"]);
    const gpu = await tab(["vc-gpu"]);
    await runInDurableObject(stub(), (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      for (const [t, cls] of [
        [cpu, "software"],
        [gpu, "mid"],
      ] as const) {
        const record = parts.tabs.get(t.nodeId)!;
        record.gpu = { class: cls } as NonNullable<typeof record.gpu>;
      }
    });
    await setState(cpu, "busy", "vc-gpu");
    await setState(gpu, "busy", "vc-gpu");
    const subject = await tab(["vc-gpu"]);
    const res = chat("vc-gpu");
    const job = await subject.nextJob();
    await setState(cpu, "idle", "vc-gpu");
    await setState(gpu, "idle", "vc-gpu");
    subject.serve(job, ["Hello there, how can I help?"], { completion_tokens: 7 });
    expect((await res).status).toBe(200);

    await within(gpu.next("audit.assign"), 5_000, "the audit reaching the GPU verifier");
    expect(cpu.received.filter((m) => m.type === "audit.assign")).toEqual([]);
  }, 15_000);
});
