import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobEvent } from "../region/job-events.js";
import type { JobStream } from "../region-client/job-stream.js";
import { streamJob } from "./job-response.js";
import { chatFormat } from "./response-format.js";
import { QuietTimer } from "../http/quiet-timer.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A job's events as a JobStream hands them out: each after `gapMs(i)` ms. */
function source(events: JobEvent[], gapMs: (i: number) => number, keepAliveMs: number) {
  let i = 0;
  return {
    keepAliveMs,
    next: async () => {
      const event = events[i] ?? null;
      const gap = gapMs(i++);
      if (gap > 0) await sleep(gap);
      return event;
    },
    cancel: async () => undefined,
  } as unknown as JobStream;
}

async function readAll(res: Response): Promise<string> {
  return await res.text();
}

const deltas = (n: number): JobEvent[] => [
  ...Array.from({ length: n }, (_, i): JobEvent => ({ type: "delta", text: `t${i} ` })),
  {
    type: "done",
    finishReason: "stop",
    usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1 },
  } as JobEvent,
];

function respond(events: JobEvent[], gapMs: (i: number) => number, keepAliveMs: number) {
  return streamJob({
    source: source(events, gapMs, keepAliveMs),
    format: chatFormat("job_ka_timer", "m"),
    includeUsage: false,
    headers: {},
    requestId: "req_ka_timer",
    opening: true,
  });
}

describe("SSE keep-alive: one timer per response, not one per token", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a 200-token answer sets at most a couple of timers, and every token arrives in order", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    const text = await readAll(respond(deltas(200), () => 0, 10_000));
    const ownTimers = timers.mock.calls.filter(([, ms]) => ms === 10_000).length;
    // Before: a setTimeout (and clearTimeout) around every read, 201 here.
    expect(ownTimers).toBeLessThanOrEqual(2);
    const got = [...text.matchAll(/"content":"(t\d+ )"/g)].map((m) => m[1]).join("");
    expect(got).toBe(Array.from({ length: 200 }, (_, i) => `t${i} `).join(""));
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(text).not.toContain(": keep-alive");
  });

  it("a pause longer than the interval mid-answer still gets its keep-alives, a quick answer none", async () => {
    // 3 quick tokens, then a 700 ms pause (a tab paused mid-answer), then the rest.
    const text = await readAll(respond(deltas(6), (i) => (i === 3 ? 700 : 20), 200));
    const before = text.indexOf('"content":"t3 "');
    const kas =
      text.slice(text.indexOf('"content":"t2 "'), before).split(": keep-alive").length - 1;
    expect(kas).toBeGreaterThanOrEqual(2);
    expect(kas).toBeLessThanOrEqual(4);
    const after = text.slice(before).split(": keep-alive").length - 1;
    expect(after).toBe(0);
  });
});

describe("QuietTimer", () => {
  it("each wait ends quiet when it alone has lasted the interval, however many waits came before", async () => {
    const quiet = new QuietTimer(150);
    // Reads that keep coming within the interval never end quiet...
    for (let i = 0; i < 5; i++) expect(await quiet.wait(sleep(60).then(() => i))).toBe(i);
    // ...and a wait that starts late in the timer's period still gets its full interval.
    const t0 = Date.now();
    const never = new Promise<number>(() => undefined);
    expect(await quiet.wait(never)).toBe("quiet");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    // The read left pending can be waited on again and still delivers.
    let deliver!: (v: number) => void;
    const late = new Promise<number>((r) => (deliver = r));
    expect(await quiet.wait(late)).toBe("quiet");
    setTimeout(() => deliver(7), 20);
    expect(await quiet.wait(late)).toBe(7);
    quiet.stop();
  });

  it("a failed read fails the wait", async () => {
    const quiet = new QuietTimer(1000);
    await expect(quiet.wait(Promise.reject(new Error("gone")))).rejects.toThrow("gone");
    quiet.stop();
  });
});
