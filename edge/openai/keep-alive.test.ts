import { describe, expect, it } from "vitest";
import { chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

const tabs = useTabs();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a response body as raw text as it arrives (comments included). */
function rawReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let ended = false;
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    ended = true;
  })();
  return {
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    count: () => text.split(": keep-alive\n\n").length - 1,
    done: () => pump,
    cancel: () => reader.cancel(),
  };
}

/** The edge project runs with SSE_KEEPALIVE_MS=300 (vitest.config.ts). */
describe("SSE keep-alives", () => {
  it("comment lines flow at a steady interval while a job waits in the queue and while it prefills", async () => {
    const t = await tabs.tab(["ka-steady"]);
    // The only tab is busy with another job, so the second request waits in the queue.
    const firstP = chat("ka-steady", { stream: true });
    const first = await t.nextJob();
    t.accept(first);
    const res = await chat("ka-steady", { stream: true });
    expect(res.status).toBe(200);
    const body = rawReader(res);
    await sleep(1000);
    const whileQueued = body.count();
    expect(whileQueued).toBeGreaterThanOrEqual(2);
    t.serve(first, ["one"]);
    await firstP;
    const second = await t.nextJob();
    t.accept(second);
    await sleep(1000); // prefilling: nothing but keep-alives
    expect(body.count() - whileQueued).toBeGreaterThanOrEqual(2);
    expect(body.text).not.toContain('"content":"two"');
    t.serve(second, ["two"]);
    await body.done();
    expect(body.text).toContain('"content":"two"');
    expect(body.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  }, 20_000);

  it("readers of the stream (the SDK's, the openai client's) skip the comments", async () => {
    const t = await tabs.tab(["ka-skip"]);
    const resP = chat("ka-skip", { stream: true });
    const job = await t.nextJob();
    t.accept(job);
    await sleep(700);
    t.serve(job, ["a", "b"]);
    expect(await streamText(await resP)).toEqual({ text: "ab", done: true });
  });

  it("a client that disconnects during a long prefill frees its tab within the interval", async () => {
    const t = await tabs.tab(["ka-gone"]);
    const res = await chat("ka-gone", { stream: true });
    const job = await t.nextJob();
    t.accept(job);
    const body = rawReader(res);
    await sleep(700);
    expect(body.count()).toBeGreaterThanOrEqual(1);
    const goneAt = Date.now();
    await body.cancel();
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    expect(Date.now() - goneAt).toBeLessThan(2000);
    expect((await getJob(job.id)).state).toBe("cancelled");
  }, 20_000);
});
