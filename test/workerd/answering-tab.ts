import { CoordinatorMessageSchema, parseFrame } from "../../shared/protocol/node-messages.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { expectedOutput, scoreClaim, type ScoreNoise } from "../support/deterministic-engine.js";
import type { ScriptedTab } from "./scripted-tab.js";

/** What a scripted tab answers to a job. */
export type Answerer = (job: JobSpec) => string;
/** The deterministic engine's answer (what an honest tab of the test model writes). */
export const honest: Answerer = (job) => expectedOutput(job.input, job.sampling).text;
export const spam: Answerer = () => "Buy cheap watches at our store today, best prices guaranteed";

/**
 * Answer every job and audit `t` receives from now on: jobs with `answer`, audits re-scored as the
 * deterministic engine would (so an honest verifier judges the answer it audits), with the
 * everyday noise of a real GPU unless a test needs verdicts that cannot vary (`noise`).
 */
export function serveForever(
  t: ScriptedTab,
  answer: Answerer,
  noise: ScoreNoise = { sd: 0.3, flipRate: 0.02, seed: 5 },
): void {
  t.ws.addEventListener("message", (e) => {
    const parsed = parseFrame(CoordinatorMessageSchema, e.data as string);
    if (!parsed.ok) return;
    const msg = parsed.msg;
    if (msg.type === "job.assign") {
      const text = answer(msg.job);
      const n = text.split(" ").length;
      t.send({ type: "job.accept", jobId: msg.job.id });
      t.send({ type: "job.delta", jobId: msg.job.id, seq: 0, text });
      t.send({
        type: "job.done",
        jobId: msg.job.id,
        finishReason: "stop",
        usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1 },
      });
    } else if (msg.type === "audit.assign") {
      const r = scoreClaim(msg, noise);
      t.send({ type: "audit.result", auditId: msg.auditId, ...r });
    }
  });
}
