import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProtocolTab } from "../support/protocol-tab.js";
import { startWranglerDev, type WranglerDev } from "../support/wrangler-dev.js";

/**
 * Over real HTTP a server sees that a client went away only when it writes to the connection. With
 * one concurrent anonymous request allowed, a streaming client that disconnects while its job
 * prefills must not hold the slot (and the tab) until the first token: the keep-alive comment
 * (SSE_KEEPALIVE_MS) is the write that finds it gone.
 */
let dev: WranglerDev;

beforeAll(async () => {
  dev = await startWranglerDev({
    vars: { ANONYMOUS_CONCURRENT: "1", SSE_KEEPALIVE_MS: "500" },
  });
});
afterAll(async () => {
  await dev?.stop();
});

async function connectTab(origin: string, models: string[]): Promise<ProtocolTab> {
  const ws = new WebSocket(`${origin.replace("http", "ws")}/v1/nodes/connect`);
  const tab = new ProtocolTab({
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    get readyState() {
      return ws.readyState;
    },
  });
  ws.addEventListener("message", (e) => tab.receive(String(e.data)));
  ws.addEventListener("close", (e) => tab.socketClosed(e.code, e.reason));
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", reject, { once: true });
  });
  await tab.handshake({ models });
  return tab;
}

const ask = (signal?: AbortSignal) =>
  fetch(`${dev.origin}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "ka-slot",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
    ...(signal ? { signal } : {}),
  });

describe("a client that disconnects during a long prefill", () => {
  it("frees its concurrency slot and its tab within about the keep-alive interval", async () => {
    const tab = await connectTab(dev.origin, ["ka-slot"]);
    const abort = new AbortController();
    const res = await ask(abort.signal);
    expect(res.status).toBe(200);
    const job = await tab.nextJob();
    tab.accept(job); // and then prefill, sending nothing for a long time
    const reader = res.body!.getReader();
    await reader.read(); // the opening chunk
    abort.abort();
    const goneAt = Date.now();
    const cancel = await Promise.race([
      tab.next("job.cancel"),
      new Promise<null>((r) => setTimeout(() => r(null), 5000)),
    ]);
    expect(cancel?.jobId).toBe(job.id);
    expect(Date.now() - goneAt).toBeLessThan(3000);
    // The slot is free again: a retry is admitted, not refused with 429.
    const tab2 = await connectTab(dev.origin, ["ka-slot"]);
    const retry = await ask();
    expect(retry.status).toBe(200);
    const again = await tab2.nextJob();
    tab2.serve(again, ["ok"]);
    expect(await retry.text()).toContain("data: [DONE]");
    tab.close();
    tab2.close();
  }, 60_000);
});
