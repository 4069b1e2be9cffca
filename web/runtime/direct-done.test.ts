import { describe, expect, it, vi } from "vitest";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import { chatJob, contributorHarness } from "../../test/support/contributor-harness.js";
import type { DirectSender } from "../direct/tab-sender.js";

/**
 * The direct path's `done` tells the caller its answer is complete (web/sdk/stream.ts finishes on
 * it once it holds `chars`), so the tab sends it only for an answer it finished — never for an
 * attempt that was interrupted and that the coordinator continues on another tab.
 */
const JOB = "job-direct-0123456789abcdef";
const PROMPT = "one two three four five six seven eight nine ten";

/** The tab's end of the data channel, recording what it would send and whether it was closed. */
function recordingSender() {
  const sent: DirectMessage[] = [];
  let closed = 0;
  const sender: DirectSender = {
    open(jobId, _peer, start) {
      let offset = start;
      return {
        connected: true,
        delta(text) {
          sent.push({ type: "delta", jobId, offset, text });
          offset += text.length;
        },
        done(finishReason, usage) {
          sent.push({ type: "done", jobId, chars: offset, finishReason, usage });
        },
        close() {
          closed++;
        },
      };
    },
  };
  return { sender, sent, closed: () => closed };
}

async function serving() {
  const direct = recordingSender();
  const h = contributorHarness({ engine: new DeterministicEngine(10), direct: direct.sender });
  await h.connect();
  const job = { ...chatJob(JOB, PROMPT), direct: { peerId: `tg-weur-${"b".repeat(32)}` } };
  h.sockets.last.receive({ type: "job.assign", job, attempt: 1 });
  return { h, direct, job };
}

describe("the direct path's done", () => {
  it("is sent for a finished answer, with the answer's length", async () => {
    const { h, direct, job } = await serving();
    await vi.waitFor(() => expect(h.frames().some((f) => f.type === "job.done")).toBe(true));
    const answer = expectedOutput(job.input, job.sampling).text;
    expect(direct.sent.at(-1)).toMatchObject({ type: "done", chars: answer.length });
  });

  const interruptions = {
    "the coordinator cancels it (the hedge the other tab won)": (h: Harness) =>
      h.sockets.last.receive({ type: "job.cancel", jobId: JOB, reason: "hedge lost" }),
    "the socket drops": (h: Harness) => h.sockets.last.serverClose(1006),
    "the contributor stops": (h: Harness) => h.contributor.stop(),
  };
  for (const [how, interrupt] of Object.entries(interruptions)) {
    it(`is not sent when ${how}: the caller reads the rest from the relay`, async () => {
      const { h, direct } = await serving();
      await vi.waitFor(() => expect(direct.sent.length).toBeGreaterThan(2));
      interrupt(h);
      // The attempt has ended once the runner closed its channel.
      await vi.waitFor(() => expect(direct.closed()).toBe(1));
      expect(direct.sent.filter((m) => m.type === "done")).toEqual([]);
      expect(direct.sent.every((m) => m.type === "delta")).toBe(true);
    });
  }
});

type Harness = Awaited<ReturnType<typeof serving>>["h"];
