import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  contribute,
  firstQ4f32Model,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * Nothing lost: two real contributor tabs serve the same model; the tab streaming an answer is
 * closed mid-stream; the coordinator moves the job to the other tab with the text already
 * delivered, that tab continues after it, and the client's stream completes with the exact answer,
 * no text missing or repeated.
 */

const co = useCoordinator({ logTail: 8000 });
let server: TestServer;
let browser: Browser;
let tabs: ContributorPage[] = [];
let model = "";

beforeAll(async () => {
  ({ server, browser } = co);
  // A short GPU benchmark (?bench-ms=): the two tabs measure before they connect.
  const opts = { path: "/?bench-ms=300" };
  tabs = await Promise.all([
    openContributorPage(browser, server.port, co.engine(), opts),
    openContributorPage(browser, server.port, co.engine(), opts),
  ]);
  model = await firstQ4f32Model(tabs[0]!.page);
  await Promise.all(tabs.map((t) => contribute(t.page, model)));
});

/** Resolves with the tab whose status turns busy first (an event on either page). */
function busyTab(): Promise<ContributorPage> {
  return Promise.race(
    tabs.map((t) => t.page.waitForSelector('#status[data-state="busy"]').then(() => t)),
  );
}

describe("failover between tabs", () => {
  it("finishes a stream on another tab when the serving tab closes mid-answer", async () => {
    const openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
    const content = Array.from({ length: 120 }, (_, i) => `w${i}`).join(" ");
    const messages = [{ role: "user" as const, content }];
    // max_tokens just above the answer's 122 tokens, and the tab closed once more bytes than that
    // were delivered: only a replacement that counts the delivered text's tokens itself (protocol
    // 8) can finish it; the coordinator's bound (a token per byte) would end it at the failover.
    const want = expectedOutput({ kind: "chat", messages }, { max_tokens: 500 });
    const max_tokens = want.usage.completion_tokens + 2;
    const stream = await openai.chat.completions.create({
      model,
      messages,
      max_tokens,
      stream: true,
      stream_options: { include_usage: true },
    });
    const first = await busyTab();
    let text = "";
    let closed = false;
    let closedAt = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.usage) usage = chunk.usage;
      if (!closed && new TextEncoder().encode(text).length > max_tokens + 8) {
        closed = true;
        closedAt = text.length;
        await first.page.close();
      }
    }
    const second = tabs.find((t) => t !== first)!;
    console.log(
      `failover transcript: closed the serving tab after ${closedAt} chars; ` +
        `client received ${text.length} chars (max_tokens ${max_tokens}), finish_reason=${finish}, usage=${JSON.stringify(usage)}`,
    );
    expect(closed).toBe(true);
    expect(text).toBe(want.text);
    expect(finish).toBe("stop");
    expect(usage).toMatchObject(want.usage);
    await expect.poll(() => second.field("jobs-served").textContent()).toBe("1");
  });
});
