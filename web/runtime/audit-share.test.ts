import { describe, expect, it, vi } from "vitest";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import {
  chatJob,
  contributionOptions,
  TINY_MODEL,
  welcomeTab,
} from "../../test/support/contributor-harness.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import { normalizeSettings } from "../control/settings.js";
import type { ChatRequest, OnDelta, ScoreRequest } from "../engine/inference-engine.js";
import type { RestartingEngine } from "../engine-client/restarting-engine.js";
import type { JobEnd } from "./job-runner.js";
import { startContributing } from "./start-contributing.js";

/**
 * Audits (teacher-forced re-scoring, up to 1,024 steps) are GPU work like jobs, so the GPU share
 * (the page's slider, the embed's `data-gpu-share`) counts them: after an audit of d ms a tab on
 * share s rests d·(1−s)/s ms, says so in audit.result, and refuses audits and jobs meanwhile.
 */
const timers = new ManualTimers();

/** Each generation or re-scoring takes 1 s of (manual) GPU time. */
class OneSecondEngine extends DeterministicEngine {
  override chat(r: ChatRequest, d: OnDelta) {
    timers.advance(1000);
    return super.chat(r, d);
  }
  override score(r: ScoreRequest) {
    timers.advance(1000);
    return super.score(r);
  }
  onCrash() {}
  terminate() {}
}

function auditAssign(auditId: string): AuditAssign {
  return {
    type: "audit.assign",
    auditId,
    model: TINY_MODEL.model_id,
    input: { kind: "chat", messages: [{ role: "user", content: "a b" }] },
    sampling: { max_tokens: 50 },
    answer: expectedOutput(chatJob("x", "a b").input, { max_tokens: 50 }).text,
    seed: 1,
    scoreStop: false,
    maxTokens: 64,
  };
}

async function contributing(gpuShare: number) {
  const sockets = new ScriptedSockets();
  const pageEnds: JobEnd[] = [];
  const c = startContributing(
    contributionOptions(sockets, {
      settings: normalizeSettings({ gpuShare, pauseOnBattery: false, pauseWhileActive: false }),
      onJobEnd: (end) => pageEnds.push(end),
      engine: new OneSecondEngine(0) as unknown as RestartingEngine,
      timers,
    }),
  );
  await c.start(TINY_MODEL, () => {});
  const s = sockets.last;
  await welcomeTab(s);
  /** Send an audit and wait for its result. */
  const audit = async (id: string) => {
    s.receive(auditAssign(id));
    let result: TabMessage | undefined;
    await vi.waitFor(() => {
      result = s.frames().find((f) => f.type === "audit.result" && f.auditId === id) as TabMessage;
      expect(result).toBeDefined();
    });
    return result as Extract<TabMessage, { type: "audit.result" }>;
  };
  return { c, s, audit, pageEnds };
}

describe("audits and the GPU share", () => {
  it("a tab on a 10% share rests 9 s after a 1 s audit, says so, and refuses audits meanwhile", async () => {
    const { c, audit } = await contributing(0.1);
    const first = await audit("audit-1");
    expect(first.error).toBeUndefined();
    expect(first.tokenLogprobs.length).toBeGreaterThan(0);
    // The rest is announced with the result, so the coordinator offers nothing meanwhile.
    expect(first.state).toBe("paused");
    expect(c.contributor.snapshot.state).toBe("paused");
    expect(c.controller.view.causes).toEqual(["duty"]);

    // An audit sent anyway while the tab rests is handed back, resting.
    const refused = await audit("audit-2");
    expect(refused.error?.code).toBe("no_capacity");
    expect(refused.state).toBe("paused");

    timers.advance(8999);
    expect(c.contributor.snapshot.state).toBe("paused");
    timers.advance(1);
    expect(c.contributor.snapshot.state).toBe("idle");
    expect((await audit("audit-3")).error).toBeUndefined();
    c.dispose();
  });

  it("at a full share an audit leaves the tab idle at once", async () => {
    const { c, audit } = await contributing(1);
    const result = await audit("audit-1");
    expect(result.state).toBe("idle");
    expect(c.contributor.snapshot.state).toBe("idle");
    c.dispose();
  });

  it("an audit carries no speed for the throttling watch and is no job in the page's ledger", async () => {
    const { c, s, audit, pageEnds } = await contributing(1);
    await audit("audit-1");
    expect(c.controller.view.speedRatio).toBeNull();
    expect(pageEnds).toEqual([]);
    // A client job still reaches the page.
    s.receive({ type: "job.assign", job: chatJob("job-1", "a b"), attempt: 1 });
    await vi.waitFor(() => expect(pageEnds.map((e) => e.jobId)).toEqual(["job-1"]));
    c.dispose();
  });
});
