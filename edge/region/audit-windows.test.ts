import { describe, expect, it } from "vitest";
import {
  CoordinatorMessageSchema,
  parseFrame,
  type AuditAssign,
} from "../../shared/protocol/node-messages.js";
import { SCORE_LOGPROBS, scoreClaim } from "../../test/support/deterministic-engine.js";
import { BIASED_SCORE_SINCE_PROTOCOL, PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { honest, serveForever, type Answerer } from "../../test/workerd/answering-tab.js";
import { newKeyPair } from "../../test/workerd/scripted-tab.js";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  waitFor,
  AUDIT_ALL,
  NO_CANARIES,
  faultsAndJobs,
  withTrust,
  reputationOf,
} from "../../test/workerd/trust-helpers.js";

/**
 * Where audits look (shared/trust/audit-windows.ts, audits.ts): a verifier scores at most
 * `maxAuditTokens` (128) tokens, and until audits could look at a later window of a long answer
 * they always scored its first 128 — a tab could answer honestly that far and write anything
 * after. Scripted tabs answer with the deterministic engine's text (one token per word) and
 * re-score with its scoring function, windows included.
 */

const { tab } = useTabs();

/** A 220-word message: the honest answer ("You said: …") is 222 tokens of the test engine. */
const LONG = Array.from({ length: 220 }, (_, i) => `word${i}`).join(" ");
const askLong = (model: string) =>
  chat(model, { stream: true, max_tokens: 400, messages: [{ role: "user", content: LONG }] });

/** The model's answer for its first 150 tokens, then the same word over and over. */
const honestThenJunk: Answerer = (job) =>
  honest(job)
    .split(" ")
    .map((w, i) => (i < 150 ? w : "cheap"))
    .join(" ");

const NO_NOISE = { sd: 0, flipRate: 0, seed: 5 };

/**
 * A verifier whose word binds (signed, not suspect: shared/trust/binding.ts) and that scores
 * windows and biased answers (the current protocol; scripted tabs speak 4 unless told).
 */
const verifier = async (model: string) =>
  tab([model], { keys: await newKeyPair(), protocol: PROTOCOL_VERSION });

describe("audit windows", () => {
  it("a tab honest for its first 150 tokens and junk after is caught by an audit of a later window", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["tr-window"]);
    serveForever(liar, honestThenJunk, NO_NOISE);
    // Sixteen long answers, each audited; the audits wait until verifiers come.
    for (let i = 0; i < 16; i++) {
      const out = await streamText(await askLong("tr-window"));
      expect(
        out.text
          .split(" ")
          .slice(150)
          .every((w) => w === "cheap"),
      ).toBe(true);
    }
    // Two verifiers: a quarantine is never one verifier's word (accusations.ts). Each answers
    // from the moment it connects (an audit may reach it before the next one connects).
    const verifiers = [];
    for (let i = 0; i < 2; i++) {
      const v = await verifier("tr-window");
      serveForever(v, honest, NO_NOISE);
      verifiers.push(v);
    }
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
      15_000,
    );
    expect(view.state).toBe("quarantined");
    expect(view.reason).toMatch(/re-scored tokens implausible/);
    // Half the audits looked at the answer's start (128 honest tokens, passed); the others at a
    // keyed later window, sent with the text before it.
    const sent = verifiers.flatMap((v) =>
      v.received.filter((m): m is AuditAssign => m.type === "audit.assign"),
    );
    expect(sent.some((a) => a.prefix === undefined)).toBe(true);
    const windows = sent.filter((a) => a.prefix !== undefined);
    expect(windows.length).toBeGreaterThan(0);
    for (const a of windows) expect(a.answer).toMatch(/^\s\S/);
  }, 30_000);

  it("an honest tab's long answers pass audits of every window", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await tab(["tr-window-ok"]);
    serveForever(subject, honest, NO_NOISE);
    for (let i = 0; i < 8; i++) await streamText(await askLong("tr-window-ok"));
    const checker = await verifier("tr-window-ok");
    serveForever(checker, honest, NO_NOISE);
    const view = await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.audits >= 8,
      15_000,
    );
    expect(view).toMatchObject({ audits: 8, failedAudits: 0 });
    // A window's count holds its prefix's tokens: no contradiction with the tokens it scored.
    expect((await faultsAndJobs(checker)).faults).toBe(0);
    expect(view.state).not.toBe("quarantined");
    expect(checker.received.some((m) => m.type === "audit.assign" && m.prefix)).toBe(true);
  }, 30_000);

  it("a window's first token is not judged: a cut inside a token leaves a fragment an honest model may find unlikely", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await tab(["tr-window-cut"]);
    serveForever(subject, honest, NO_NOISE);
    for (let i = 0; i < 8; i++) await streamText(await askLong("tr-window-cut"));
    // An honest verifier whose tokenizer cuts each window's first token where the serving tab's
    // did not: that token alone scores like another model's.
    const checker = await verifier("tr-window-cut");
    let windows = 0;
    checker.ws.addEventListener("message", (e) => {
      const parsed = parseFrame(CoordinatorMessageSchema, e.data as string);
      if (!parsed.ok || parsed.msg.type !== "audit.assign") return;
      const { answerTokens, ...scores } = scoreClaim(parsed.msg, NO_NOISE);
      if (parsed.msg.prefix) {
        windows++;
        scores.tokenLogprobs[0] = SCORE_LOGPROBS.foreign;
      }
      checker.send({ type: "audit.result", auditId: parsed.msg.auditId, ...scores, answerTokens });
    });
    const view = await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.audits >= 8,
      15_000,
    );
    expect(windows).toBeGreaterThan(0);
    expect(view).toMatchObject({ audits: 8, failedAudits: 0 });
  }, 30_000);

  it("an audit of a biased answer goes only to a verifier that scores it so (protocol 9)", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await tab(["tr-window-old"]);
    serveForever(subject, honest, NO_NOISE);
    await streamText(await chat("tr-window-old", { stream: true, logit_bias: { "42": 5 } }));
    // A page from before protocol 9 would score the answer unbiased: idle first, it is passed over.
    const old = await tab(["tr-window-old"], {
      keys: await newKeyPair(),
      protocol: BIASED_SCORE_SINCE_PROTOCOL - 1,
    });
    serveForever(old, honest, NO_NOISE);
    const current = await verifier("tr-window-old");
    serveForever(current, honest, NO_NOISE);
    const audited = (t: typeof old) => t.received.filter((m) => m.type === "audit.assign");
    await waitFor(
      async () => audited(current).length,
      (n) => n > 0,
    );
    expect(audited(current)).toMatchObject([{ sampling: { logit_bias: { "42": 5 } } }]);
    expect(audited(old)).toEqual([]);
    const view = await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.audits >= 1,
    );
    expect(view).toMatchObject({ audits: 1, failedAudits: 0 });
  });
});
