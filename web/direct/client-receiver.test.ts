import { describe, expect, it, vi } from "vitest";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import { chunk, sse } from "../../test/support/canned-fetch.js";
import { Tabgrid } from "../sdk/client.js";
import { DIRECT_WINDOW, type DirectReceiver } from "./client-receiver-types.js";

/**
 * The caller's end of the direct path with a stand-in for the `peerjs` client: the receiver's Peer
 * opens at once, and the test plays tabs that connect and send data-channel messages. The peer id
 * outlives a request, so a tab that served this caller once can connect and send at any time.
 */
type Handler = (...args: unknown[]) => void;
class Emitter {
  private readonly handlers = new Map<string, Handler[]>();
  on(ev: string, h: Handler): this {
    this.handlers.set(ev, [...(this.handlers.get(ev) ?? []), h]);
    return this;
  }
  once(ev: string, h: Handler): this {
    return this.on(ev, h);
  }
  emit(ev: string, ...args: unknown[]): void {
    for (const h of this.handlers.get(ev) ?? []) h(...args);
  }
}
const peers: Emitter[] = [];
vi.mock("peerjs", () => ({
  Peer: class extends Emitter {
    constructor() {
      super();
      peers.push(this);
      queueMicrotask(() => this.emit("open"));
    }
    destroy() {}
  },
}));
const { openDirectReceiver } = await import("./client-receiver.js");

const PEER_ID = `tg-weur-${"a".repeat(32)}`;
const JOB = `job_weur_${"1".repeat(32)}`;
const signalling = (async (url: string) =>
  url.endsWith("/ice")
    ? Response.json({ iceServers: [] })
    : new Response(PEER_ID)) as unknown as typeof fetch;

/** A tab's data channel to the caller. */
class Tab extends Emitter {
  readonly open = true;
  closed = false;
  constructor(readonly metadata: unknown) {
    super();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit("close");
  }
  delta(jobId: string, offset: number, text: string): void {
    this.emit("data", { type: "delta", jobId, offset, text });
  }
}

async function receiver(): Promise<{ r: DirectReceiver; connect: (jobId: string) => Tab }> {
  const r = await openDirectReceiver({
    origin: "http://c",
    iceServers: [],
    openTimeoutMs: 1000,
    fetch: signalling,
  });
  const peer = peers.at(-1)!;
  return {
    r,
    connect: (jobId) => {
      const tab = new Tab({ jobId });
      peer.emit("connection", tab);
      return tab;
    },
  };
}

/** What a feed hands its stream: text per channel. */
function listen(r: DirectReceiver, jobId: string) {
  const got: Array<[DirectMessage, number]> = [];
  const feed = r.expect().feed(jobId);
  feed.listen((m, c) => got.push([m, c]));
  const text = () => got.map(([m]) => (m.type === "delta" ? m.text : "")).join("");
  return { feed, got, text };
}

describe("the caller's direct receiver", () => {
  it("refuses a tab naming a job nobody waits for, and keeps nothing from it", async () => {
    // Before: each made-up id got a feed of up to 10,000 messages (1.3 GB at 64 KiB each).
    const { r, connect } = await receiver();
    const stranger = connect("job-nobody-asked-for");
    expect(stranger.closed).toBe(true);

    // A tab that served this caller: its channel stays open after the job, then it sends more.
    const served = listen(r, JOB);
    const tab = connect(JOB);
    tab.delta(JOB, 0, "answer");
    served.feed.close();
    expect(tab.closed).toBe(false);
    const text = "x".repeat(64 * 1024);
    for (let i = 0; i < 2000; i++) tab.delta("made-up-1", i * text.length, text);
    expect(tab.closed).toBe(true);
    const later = listen(r, "made-up-1");
    expect(later.got).toEqual([]);
    expect(served.text()).toBe("answer");
  });

  it("keeps what comes before the response names the job, for that job only", async () => {
    const { r, connect } = await receiver();
    const expected = r.expect();
    // The serving tab is faster than the response's headers; a stranger sends too meanwhile.
    const tab = connect(JOB);
    tab.delta(JOB, 0, "Hello");
    const stranger = connect("job-made-up");
    stranger.delta("job-made-up", 0, "spam");
    const feed = expected.feed(JOB);
    const got: string[] = [];
    feed.listen((m) => got.push(m.type === "delta" ? m.text : ""));
    tab.delta(JOB, 5, " world");
    expect(got).toEqual(["Hello", " world"]);
    expect(feed.connected).toBe(true);
    // Nothing is waiting any more: the stranger's next message closes its channel.
    stranger.delta("job-made-up", 4, "spam");
    expect(stranger.closed).toBe(true);
    expect(tab.closed).toBe(false);
    expect(listen(r, "job-made-up").got).toEqual([]);
  });

  it("forgets what it held for a request that failed", async () => {
    const { r, connect } = await receiver();
    const expected = r.expect();
    const tab = connect(JOB);
    tab.delta(JOB, 0, "Hello");
    expected.cancel();
    tab.delta(JOB, 5, " world");
    expect(tab.closed).toBe(true);
    expect(listen(r, JOB).got).toEqual([]);
  });

  it("keeps at most DIRECT_WINDOW of a job's messages before its stream listens", async () => {
    const { r, connect } = await receiver();
    const feed = r.expect().feed(JOB);
    const tab = connect(JOB);
    const piece = "y".repeat(1024);
    for (let i = 0; i < 2000; i++) tab.delta(JOB, i * piece.length, piece);
    let kept = 0;
    feed.listen((m) => (kept += m.type === "delta" ? m.text.length : 0));
    expect(kept).toBe(DIRECT_WINDOW.chars);
    // Past its window the job takes nothing more over the data channel (the relay has it all).
    tab.delta(JOB, 2000 * piece.length, piece);
    expect(kept).toBe(DIRECT_WINDOW.chars);
    expect(tab.closed).toBe(false);
  });

  it("holds at most 32 channels open, counting those that failed before they opened", async () => {
    const { r, connect } = await receiver();
    r.expect();
    const failed = connect(JOB);
    failed.emit("error", new Error("Negotiation of connection failed")); // and no "close"
    const tabs = Array.from({ length: 33 }, () => connect(JOB));
    expect(tabs.filter((t) => t.closed)).toEqual([tabs[32]]);
    tabs[0]!.close();
    expect(connect(JOB).closed).toBe(false);
  });

  it("drops a tab's late messages for a finished job quietly, and numbers the channels", async () => {
    const { r, connect } = await receiver();
    const first = listen(r, JOB);
    const a = connect(JOB);
    const b = connect(JOB); // a hedge: the second tab racing the same job
    a.delta(JOB, 0, "one");
    b.delta(JOB, 0, "one");
    expect(first.got.map(([, channel]) => channel)).toEqual([1, 2]);
    first.feed.close();
    a.emit("data", { type: "done", jobId: JOB, chars: 3, finishReason: "abort", usage: {} });
    a.delta(JOB, 3, " two");
    expect(a.closed).toBe(false);
    // The same channel carries the caller's next job.
    const next = listen(r, "job-next");
    a.delta("job-next", 0, "again");
    expect(next.text()).toBe("again");
  });

  it("the SDK tells the receiver of a request before sending it", async () => {
    // The tab sends before the coordinator's response arrives; the stream still gets it first.
    let respond: (res: Response) => void = () => {};
    const tabs: Tab[] = [];
    const doFetch = (async (url: string, init?: RequestInit) => {
      if (init?.method !== "POST") return signalling(url);
      const peer = peers.at(-1)!;
      const tab = new Tab({ jobId: JOB });
      peer.emit("connection", tab);
      tab.delta(JOB, 0, "Hello");
      tabs.push(tab);
      return new Promise<Response>((resolve) => (respond = resolve));
    }) as unknown as typeof fetch;
    const client = new Tabgrid({
      baseURL: "http://c/v1",
      transport: "p2p",
      p2pModuleUrl: new URL("./client-receiver.ts", import.meta.url).href,
      fetch: doFetch,
    });
    const opening = client.chat.completions.create({ model: "m", messages: [], stream: true });
    await vi.waitFor(() => expect(tabs).toHaveLength(1));
    respond(
      sse([chunk(JOB, "Hello"), chunk(JOB, null, "stop"), "[DONE]"], { "x-tabgrid-job-id": JOB }),
    );
    const stream = await opening;
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe("Hello");
    expect(stream.stats).toMatchObject({ directConnected: true, firstBy: { direct: 5 } });
    expect(tabs[0]!.closed).toBe(false);
    client.close();
  });
});
