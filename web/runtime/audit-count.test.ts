import { describe, expect, it, vi } from "vitest";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import {
  DeterministicEngine,
  claimTokens,
  expectedOutput,
} from "../../test/support/deterministic-engine.js";
import {
  chatJob,
  contributionOptions,
  TINY_MODEL,
  welcomeTab,
} from "../../test/support/contributor-harness.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import { normalizeSettings } from "../control/settings.js";
import type { ScoreRequest, ScoreResult } from "../engine/inference-engine.js";
import type { RestartingEngine } from "../engine-client/restarting-engine.js";
import { startContributing } from "./start-contributing.js";

/**
 * A verifier's audit.result carries its count of the whole answer's tokens (`answerTokens`), which
 * the coordinator compares with the audited tab's completion tokens (shared/trust/token-counts.ts)
 * — also when it scores only the first `maxTokens` of them. An engine that cannot count sends none.
 */

class TestEngine extends DeterministicEngine {
  onCrash() {}
  terminate() {}
}

/** An engine from before counts: its scores carry no count. */
class UncountingEngine extends TestEngine {
  override async score(r: ScoreRequest): Promise<ScoreResult> {
    const { answerTokens: _, ...scores } = await super.score(r);
    return scores;
  }
}

const answer = expectedOutput(chatJob("x", "a b c d").input, { max_tokens: 50 }).text;

function auditAssign(auditId: string, maxTokens: number, prefix?: string): AuditAssign {
  return {
    ...(prefix !== undefined ? { prefix } : {}),
    type: "audit.assign",
    auditId,
    model: TINY_MODEL.model_id,
    input: { kind: "chat", messages: [{ role: "user", content: "a b c d" }] },
    sampling: { max_tokens: 50 },
    answer: prefix !== undefined ? answer.slice(prefix.length) : answer,
    seed: 1,
    scoreStop: false,
    maxTokens,
  };
}

async function auditWith(engine: TestEngine, maxTokens: number, prefix?: string) {
  const sockets = new ScriptedSockets();
  const c = startContributing(
    contributionOptions(sockets, {
      settings: normalizeSettings({ gpuShare: 1, pauseOnBattery: false, pauseWhileActive: false }),
      engine: engine as unknown as RestartingEngine,
    }),
  );
  await c.start(TINY_MODEL, () => {});
  const s = sockets.last;
  await welcomeTab(s);
  s.receive(auditAssign("audit-1", maxTokens, prefix));
  let result: TabMessage | undefined;
  await vi.waitFor(() => {
    result = s.frames().find((f) => f.type === "audit.result");
    expect(result).toBeDefined();
  });
  c.dispose();
  return result as Extract<TabMessage, { type: "audit.result" }>;
}

describe("the verifier's count of an audited answer", () => {
  it("audit.result carries the whole answer's token count, beyond the tokens scored", async () => {
    const whole = claimTokens(answer, { max_tokens: 50 }).length;
    expect(whole).toBeGreaterThan(2);
    const all = await auditWith(new TestEngine(0), 64);
    expect(all.error).toBeUndefined();
    expect(all).toMatchObject({ answerTokens: whole });
    expect(all.tokenLogprobs).toHaveLength(whole);
    const cut = await auditWith(new TestEngine(0), 2);
    expect(cut.tokenLogprobs).toHaveLength(2);
    expect(cut).toMatchObject({ answerTokens: whole });
  });

  it("a window's audit (protocol 9) reaches the engine with its prefix: scored where it stands, the whole answer counted", async () => {
    const whole = claimTokens(answer, { max_tokens: 50 }).length;
    const prefix = answer.split(" ").slice(0, 2).join(" ");
    const scored: ScoreRequest[] = [];
    class Recording extends TestEngine {
      override score(r: ScoreRequest) {
        scored.push(r);
        return super.score(r);
      }
    }
    const window = await auditWith(new Recording(0), 64, prefix);
    expect(scored[0]).toMatchObject({ prefix, answer: answer.slice(prefix.length) });
    expect(window).toMatchObject({ answerTokens: whole });
    expect(window.tokenLogprobs).toHaveLength(whole - 2);
  });

  it("an engine that cannot count sends no count", async () => {
    const result = await auditWith(new UncountingEngine(0), 64);
    expect(result.error).toBeUndefined();
    expect(result.tokenLogprobs.length).toBeGreaterThan(0);
    expect("answerTokens" in result).toBe(false);
  });
});
