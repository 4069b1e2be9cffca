import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";

// A caller's concurrency slot is held by the job a streamed response reads (edge/auth/client-slots.ts)
// until the job ends. These pin what a client sees: each SSE chunk reaches it as the tab sends it,
// and a client that hangs up frees its slot once its job is let go (after its resume grace).

const ADMIN = "test-admin-token-0123456789";
const tabs: ScriptedTab[] = [];
afterEach(() => {
  tabs.splice(0).forEach((t) => t.close());
});

async function createKey(limits: object): Promise<string> {
  const res = await SELF.fetch("http://tabgrid.test/v1/admin/keys", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "stream", ...limits }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

function chat(model: string, key: string, stream: boolean): Promise<Response> {
  return SELF.fetch("http://tabgrid.test/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }] }),
  });
}

/** Read the body until `text` has arrived; returns what was read. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string) {
  const decoder = new TextDecoder();
  let seen = "";
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${JSON.stringify(text)}: ${seen}`);
    seen += decoder.decode(value, { stream: true });
  }
  return seen;
}

/**
 * Answer every job the tab gets until stopped. After a finished job the Region may give the tab a
 * canary (docs/trust.md, on in production) that a tab cannot tell from a client's job.
 */
function answerEveryJob(tab: ScriptedTab): () => void {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const next = await tab.nextJobOrClose();
      if (!next || stopped || tab.isClosed) return;
      tab.serve(next, ["fine"]);
    }
  })();
  return () => {
    stopped = true;
  };
}

describe("admission while a response streams", () => {
  it("each chunk reaches the client at once, and a client that hangs up frees its slot", async () => {
    const key = await createKey({ concurrent: 1 });
    const tab = await ScriptedTab.connect(["held-model"]);
    tabs.push(tab);
    const res = await chat("held-model", key, true);
    expect(res.status).toBe(200);
    const job = await tab.nextJob();
    tab.accept(job);
    tab.delta(job, 0, "first-piece");
    const reader = res.body!.getReader();
    // The job is still open (no done): the piece must not wait for more data or the end.
    expect(await readUntil(reader, "first-piece")).not.toContain("[DONE]");
    // The slot is held while the body streams.
    const refused = await chat("held-model", key, false);
    expect(refused.status).toBe(429);
    await refused.body?.cancel();

    await reader.cancel();
    // The job is cancelled on the tab once its resume grace (500 ms) passed with no reader; its
    // Region object let go of the slot as it cancelled it, before that cancel went out.
    const cancel = await tab.next("job.cancel");
    expect(cancel.jobId).toBe(job.id);
    tab.done(job, "abort");
    const stop = answerEveryJob(tab);
    expect((await chat("held-model", key, false)).status).toBe(200);
    stop();
  });

  it("a body that ends frees the slot for the next request", async () => {
    const key = await createKey({ concurrent: 1 });
    const tab = await ScriptedTab.connect(["ended-model"]);
    tabs.push(tab);
    const stop = answerEveryJob(tab);
    for (let i = 0; i < 3; i++) {
      const res = await chat("ended-model", key, true);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("[DONE]");
    }
    stop();
  });
});
