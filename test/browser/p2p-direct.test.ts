import type { Browser, BrowserContext, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import {
  canUnshareNet,
  grabMedia,
  loadSdk,
  openFrameTab,
  rerunInLoopbackNamespace,
  routeTestEngine,
} from "../support/embed-harness.js";

/**
 * The WebRTC direct path with the official `peerjs` client on both ends against Tabgrid's own
 * signalling (edge/signal): a caller page using the SDK with `transport: "p2p"` and a contributor
 * tab (the headless frame runtime) exchange a job over a data channel; with ICE made to fail (every
 * ICE candidate is dropped from the tab's signalling, as blocked UDP would), the same job arrives
 * through the coordinator relay and the caller notices nothing.
 *
 * WebRTC runs inside a network namespace with only loopback: this file re-runs itself under
 * `unshare -n` when it can (root, as in CI).
 */
const FILE = "test/browser/p2p-direct.test.ts";
const inside = process.env.TABGRID_NETNS === "1";

if (!inside && canUnshareNet()) {
  describe("p2p direct path (in a loopback-only network namespace)", () => {
    it("passes inside `unshare -n`", () => {
      const { status, output } = rerunInLoopbackNamespace(FILE);
      console.log(output.slice(-5000));
      expect(status).toBe(0);
      expect(output).toMatch(/Tests\s+\d+ passed/);
    });
  });
} else {
  describe("p2p direct path", defineTests);
}

interface CallResult {
  text: string;
  finish: string | null;
  usage: unknown;
  chunks: number;
  stats: {
    transport: string;
    directConnected: boolean;
    firstBy: { relay: number; direct: number };
    diverged: boolean;
  };
}

function defineTests() {
  const co = useCoordinator({ webRtc: true });
  let server: TestServer;
  let browser: Browser;
  let workerBundle: string;
  let model = "";

  beforeAll(() => {
    ({ server, browser } = co);
    workerBundle = co.engine();
  });

  async function tabAndCaller(blockIce: boolean): Promise<{ ctx: BrowserContext; caller: Page }> {
    const ctx = await browser.newContext();
    await routeTestEngine(ctx, workerBundle);
    const coordinator = `http://localhost:${server.port}`;
    await openFrameTab(ctx, coordinator, { withMedia: true, blockIce });
    const caller = await ctx.newPage();
    caller.on("pageerror", (err) => console.error(`[caller error] ${err.message}`));
    await caller.goto(`${coordinator}/v1/models`);
    const listed = JSON.parse((await caller.textContent("body")) ?? "{}") as {
      data: Array<{ id: string }>;
    };
    model = listed.data[0]?.id ?? "";
    expect(model).not.toBe("");
    await grabMedia(caller);
    await loadSdk(caller);
    return { ctx, caller };
  }

  function call(caller: Page, content: string, transport: "p2p" | "relay"): Promise<CallResult> {
    return caller.evaluate(
      async ({ content, model, transport }) => {
        const sdk = (window as unknown as { sdk: typeof import("../../web/sdk/index.js") }).sdk;
        const client = new sdk.Tabgrid({ transport });
        const stream = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content }],
          max_tokens: 200,
          stream: true,
          stream_options: { include_usage: true },
        });
        let text = "";
        let finish: string | null = null;
        let usage: unknown = null;
        let chunks = 0;
        for await (const chunk of stream) {
          chunks++;
          text += chunk.choices[0]?.delta.content ?? "";
          finish = chunk.choices[0]?.finish_reason ?? finish;
          if (chunk.usage) usage = chunk.usage;
        }
        client.close();
        return { text, finish, usage, chunks, stats: stream.stats };
      },
      { content, model, transport },
    );
  }

  it("streams a job tab -> page over a WebRTC data channel", async () => {
    const { ctx, caller } = await tabAndCaller(false);
    const content = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi";
    const r = await call(caller, content, "p2p");
    const want = expectedOutput(
      { kind: "chat", messages: [{ role: "user", content }] },
      { max_tokens: 200 },
    );
    console.log(`p2p: ${JSON.stringify(r.stats)} chunks=${r.chunks}`);
    expect(r.text).toBe(want.text);
    expect(r.finish).toBe("stop");
    expect(r.usage).toMatchObject(want.usage);
    expect(r.stats.directConnected).toBe(true);
    // The data channel delivered text first (each token is sent at once; the relay coalesces).
    expect(r.stats.firstBy.direct).toBeGreaterThan(0);
    expect(r.stats.firstBy.direct + r.stats.firstBy.relay).toBe(want.text.length);
    expect(r.stats.diverged).toBe(false);
    await ctx.close();
  });

  it("with ICE made to fail, the same job arrives through the relay", async () => {
    const { ctx, caller } = await tabAndCaller(true);
    const content = "one two three four five six seven eight nine ten";
    const r = await call(caller, content, "p2p");
    const want = expectedOutput(
      { kind: "chat", messages: [{ role: "user", content }] },
      { max_tokens: 200 },
    );
    console.log(`p2p without ICE: ${JSON.stringify(r.stats)} chunks=${r.chunks}`);
    expect(r.text).toBe(want.text);
    expect(r.finish).toBe("stop");
    expect(r.usage).toMatchObject(want.usage);
    expect(r.stats.directConnected).toBe(false);
    expect(r.stats.firstBy).toEqual({ relay: want.text.length, direct: 0 });
    await ctx.close();
  });
}
