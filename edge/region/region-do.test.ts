import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { ModelListSchema } from "../../shared/openai/models.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { MAX_FRAME_BYTES, PING_FRAME, PONG_FRAME } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { ScriptedTab, identityProof, newKeyPair } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";

const tabs = useTabs();
const tab = (models: string[], keys?: CryptoKeyPair) => tabs.tab(models, keys ? { keys } : {});

describe("contributor socket: bad input closes only that socket, with a typed reason", () => {
  it.each([
    ["not json", "{nope", CloseCode.BadFrame],
    ["unknown type", JSON.stringify({ type: "launch-missiles" }), CloseCode.BadFrame],
    [
      "status before hello",
      JSON.stringify({ type: "status", state: "idle", models: [] }),
      CloseCode.NotRegistered,
    ],
    [
      "old protocol",
      JSON.stringify({
        type: "hello",
        protocol: 0,
        adapter: {
          vendor: "",
          architecture: "",
          description: "",
          shaderF16: false,
          maxBufferSize: 0,
          maxStorageBufferBindingSize: 0,
        },
        models: [],
        state: "idle",
        agent: "x",
      }),
      CloseCode.BadFrame, // protocol must be positive: the schema rejects 0 before the version check
    ],
    [
      "adapter description with a bidi override (GET /v1/nodes shows it)",
      JSON.stringify({
        type: "hello",
        protocol: 1,
        adapter: {
          vendor: "",
          architecture: "",
          description: "\u202eRTX 4090",
          shaderF16: false,
          maxBufferSize: 0,
          maxStorageBufferBindingSize: 0,
        },
        models: ["m"],
        state: "idle",
        agent: "x",
      }),
      CloseCode.BadFrame,
    ],
    ["oversized frame", "x".repeat(MAX_FRAME_BYTES + 1), CloseCode.FrameTooLarge],
  ])("%s", async (_name, frame, code) => {
    const healthy = await tab(["survivor-model"]);
    const bad = await ScriptedTab.open();
    bad.send(frame);
    const closed = await bad.closed;
    expect(closed.code).toBe(code);
    expect(closed.reason.length).toBeGreaterThan(0);
    // The healthy tab still serves.
    const resP = chat("survivor-model");
    healthy.serve(await healthy.nextJob(), ["still here"]);
    expect((await resP).status).toBe(200);
  });

  it("a tab speaking a newer protocol than the coordinator is told so with a typed close", async () => {
    const t = await ScriptedTab.open();
    t.send({
      type: "hello",
      protocol: PROTOCOL_VERSION + 1,
      adapter: {
        vendor: "",
        architecture: "",
        description: "",
        shaderF16: false,
        maxBufferSize: 0,
        maxStorageBufferBindingSize: 0,
      },
      models: ["m"],
      state: "idle",
      agent: "future-tab/9",
    });
    const closed = await t.closed;
    expect(closed.code).toBe(CloseCode.ProtocolTooNew);
    expect(closed.reason).toContain(`protocol ${PROTOCOL_VERSION}`);
  });

  it("a malformed frame from the serving tab closes it and its job moves to another tab", async () => {
    const t = await tab(["crash-model"]);
    const resP = chat("crash-model");
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: "zero", text: 1 });
    expect((await t.closed).code).toBe(CloseCode.BadFrame);
    const spare = await tab(["crash-model"]);
    spare.serve(await spare.nextJob(), ["rescued"]);
    const body = ChatCompletionSchema.parse(await (await resP).json());
    expect(body.choices[0]?.message.content).toBe("rescued");
  });
});

describe("liveness and identity", () => {
  it("pings are answered by auto-response", async () => {
    const t = await tab(["ping-model"]);
    const pong = new Promise<string>((resolve) =>
      t.ws.addEventListener("message", (e) => {
        if (e.data === PONG_FRAME) resolve(e.data as string);
      }),
    );
    t.send(PING_FRAME);
    expect(await pong).toBe(PONG_FRAME);
  });

  it("a tab reconnecting with its key pair keeps its id and replaces its old socket", async () => {
    const keys = await newKeyPair();
    const first = await tab(["replace-model"], keys);
    const second = await tab(["replace-model"], keys);
    expect(first.nodeId).toMatch(/^n_/);
    expect(second.nodeId).toBe(first.nodeId);
    expect((await first.closed).code).toBe(CloseCode.Replaced);
    const nodes = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
      data: Array<{ models: string[] }>;
    };
    expect(nodes.data.filter((n) => n.models.includes("replace-model"))).toHaveLength(1);
  });

  it("a tab cannot take another tab's id without its private key", async () => {
    const victim = await tab(["victim-model"], await newKeyPair());
    // Claiming the id with no proof: the coordinator gives the claimant a fresh id instead.
    const claimant = await ScriptedTab.open();
    const challenge = await claimant.next("challenge");
    claimant.send({ ...helloFor(["victim-model"]), nodeId: victim.nodeId });
    expect((await claimant.next("welcome")).nodeId).not.toBe(victim.nodeId);
    claimant.close();
    // Claiming it with someone else's signature over the right nonce: rejected with a typed close.
    const thief = await ScriptedTab.open();
    const nonce = (await thief.next("challenge")).nonce;
    const proof = await identityProof(await newKeyPair(), nonce);
    thief.send({ ...helloFor(["victim-model"]), nodeId: victim.nodeId, identity: proof.identity });
    expect((await thief.closed).code).toBe(CloseCode.IdentityRejected);
    // A signature over another socket's nonce does not verify either.
    const replay = await ScriptedTab.open();
    await replay.next("challenge");
    const keys = await newKeyPair();
    const stale = await identityProof(keys, challenge.nonce);
    replay.send({ ...helloFor(["victim-model"]), ...stale });
    expect((await replay.closed).code).toBe(CloseCode.IdentityRejected);
    // The victim still holds its identity and serves.
    const resP = chat("victim-model");
    victim.serve(await victim.nextJob(), ["still mine"]);
    expect((await resP).status).toBe(200);
  });
});

describe("listings", () => {
  it("GET /v1/nodes shows tabs without their identity secret", async () => {
    const t = await tab(["list-model"]);
    const res = await SELF.fetch("http://tabgrid.test/v1/nodes");
    const text = await res.text();
    expect(text).not.toContain(t.nodeId);
    const body = JSON.parse(text) as {
      data: Array<{
        id: string;
        models: string[];
        state: string;
        adapter: { architecture: string };
      }>;
    };
    const mine = body.data.find((n) => n.models.includes("list-model"));
    expect(mine?.state).toBe("idle");
    expect(mine?.adapter.architecture).toBe("swiftshader");
    expect(mine?.id).toMatch(/^[0-9a-f]{12}$/);
  });

  it("GET /v1/models lists what connected tabs serve now, and forgets a tab that left", async () => {
    const t = await tab(["models-a", "models-b"]);
    const list = ModelListSchema.parse(
      await (await SELF.fetch("http://tabgrid.test/v1/models")).json(),
    );
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining(["models-a", "models-b"]));
    expect(list.data.find((m) => m.id === "models-a")?.tabgrid).toEqual({ nodes: 1, idle: 1 });
    t.close();
    await t.closed;
    // The close reaches the object asynchronously; poll the public listing until it reflects it.
    await expect
      .poll(async () => {
        const l = ModelListSchema.parse(
          await (await SELF.fetch("http://tabgrid.test/v1/models")).json(),
        );
        return l.data.some((m) => m.id === "models-a");
      })
      .toBe(false);
  });

  it("GET /v1/catalog merges operator models (EXTRA_MODELS) over WebLLM's defaults", async () => {
    const body = (await (await SELF.fetch("http://tabgrid.test/v1/catalog")).json()) as {
      data: Array<{ model_id: string }>;
    };
    const ids = body.data.map((m) => m.model_id);
    expect(ids).toContain("Qwen2.5-0.5B-Instruct-q4f32_1-MLC");
    expect(ids).toContain("Operator-Test-Model-q4f32_1-MLC");
  });
});

describe("hibernation", () => {
  it("after the Region object is evicted, a connected tab is restored from its socket and serves", async () => {
    const t = await tab(["evict-model"]);
    const stub = regionStub(appEnv, "wnam");
    await evictDurableObject(stub);
    const resP = chat("evict-model");
    const job = await t.nextJob();
    t.serve(job, ["after ", "eviction"]);
    const res = await resP;
    const body = ChatCompletionSchema.parse(await res.json());
    expect(body.choices[0]?.message.content).toBe("after eviction");
    // The job was written to SQLite before dispatch and finished there.
    const state = await runInDurableObject(regionStub(appEnv, "wnam"), (_obj, ctx) =>
      ctx.storage.sql.exec<{ state: string }>(`SELECT state FROM jobs WHERE id = ?`, job.id).one(),
    );
    expect(state.state).toBe("done");
  });
});

function helloFor(models: string[]) {
  return {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    adapter: {
      vendor: "x",
      architecture: "y",
      description: "",
      shaderF16: false,
      maxBufferSize: 1,
      maxStorageBufferBindingSize: 1,
    },
    models,
    state: "idle",
    agent: "test",
  };
}
