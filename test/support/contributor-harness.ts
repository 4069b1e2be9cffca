import { expect, vi } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AdapterInfo, TabMessage } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import type { DirectSender } from "../../web/direct/tab-sender.js";
import type { InferenceEngine } from "../../web/engine/inference-engine.js";
import { Contributor } from "../../web/runtime/contributor.js";
import type { ContributionOptions } from "../../web/runtime/start-contributing.js";
import type { ContributorView } from "../../web/runtime/tab-status.js";
import { DeterministicEngine } from "./deterministic-engine.js";
import { ManualTimers } from "./manual-timers.js";
import { ScriptedSockets, type ScriptedSocket } from "./scripted-socket.js";

/**
 * The real tab runtime (`Contributor` and its `JobRunner`) over a scripted socket with manual
 * timers, for the web unit tests: one place that builds it and walks it through the challenge and
 * welcome, so each test file says only what its tab does differently.
 */

export const TINY_MODEL: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

/** The adapter the unit tests' tabs report (SwiftShader, as in the browser tests). */
export const TEST_ADAPTER: AdapterInfo = {
  vendor: "google",
  architecture: "swiftshader",
  description: "",
  shaderF16: false,
  maxBufferSize: 1,
  maxStorageBufferBindingSize: 1,
};

/**
 * What `startContributing` needs besides its engine in a unit test: the test adapter, no identity
 * key, a direct path that never connects, a scripted socket and no tab-link Worker or page
 * lifecycle; `overrides` add the rest (the engine, timers, settings, callbacks).
 */
export function contributionOptions(
  sockets: ScriptedSockets,
  overrides: Partial<ContributionOptions> & Pick<ContributionOptions, "settings">,
): ContributionOptions {
  return {
    agent: "test",
    adapter: TEST_ADAPTER,
    onView: () => {},
    url: "ws://localhost/v1/nodes/connect",
    identity: { prove: async () => null },
    direct: { open: () => ({ connected: false, delta() {}, done() {}, close() {} }) },
    createSocket: sockets.create,
    tabLink: null,
    lifecycle: null,
    ...overrides,
  };
}

/**
 * The coordinator's side of a tab's connect on `socket`: open it, send the challenge, wait for the
 * hello (built asynchronously: signing), then welcome the tab.
 */
export async function welcomeTab(
  socket: ScriptedSocket,
  welcome: { protocol?: number; nodeId?: string; statusIntervalMs?: number } = {},
): Promise<void> {
  socket.open();
  socket.receive({ type: "challenge", nonce: "nonce-0123456789abcdef" });
  await vi.waitFor(() => expect(socket.frames().length).toBeGreaterThan(0));
  socket.receive({
    type: "welcome",
    protocol: welcome.protocol ?? PROTOCOL_VERSION,
    nodeId: welcome.nodeId ?? "node-assigned-1",
    statusIntervalMs: welcome.statusIntervalMs ?? 15_000,
  });
}

/** A chat job for `TINY_MODEL` (or `modelId`) with one user message. */
export function chatJob(id: string, content: string, modelId = TINY_MODEL.model_id): JobSpec {
  return {
    id,
    model: modelId,
    input: { kind: "chat", messages: [{ role: "user", content }] },
    sampling: { max_tokens: 50 },
  };
}

export interface HarnessOptions<E extends InferenceEngine> {
  engine?: E;
  model?: ModelRecord;
  /** What the scripted coordinator's welcome says it speaks. */
  protocol?: number;
  nodeId?: string;
  statusIntervalMs?: number;
  /** The direct (WebRTC) path's tab side, for jobs whose caller asked for it. */
  direct?: DirectSender;
}

export function contributorHarness<E extends InferenceEngine = DeterministicEngine>(
  opts: HarnessOptions<E> = {},
) {
  const engine = opts.engine ?? (new DeterministicEngine(0) as unknown as E);
  const model = opts.model ?? TINY_MODEL;
  const sockets = new ScriptedSockets();
  const timers = new ManualTimers();
  const waiters: { pred: (v: ContributorView) => boolean; resolve: () => void }[] = [];
  const stored: string[] = [];
  const contributor = new Contributor({
    engine,
    url: "ws://localhost/v1/nodes/connect",
    adapter: TEST_ADAPTER,
    agent: "test",
    identity: {
      prove: async (nonce: string) => {
        stored.push(nonce);
        return null;
      },
    },
    onChange: (v) => {
      for (const w of [...waiters])
        if (w.pred(v)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
    },
    createSocket: sockets.create,
    timers,
    ...(opts.direct ? { direct: opts.direct } : {}),
  });
  /** Resolves on the first view change that satisfies `pred` (an event, not a sleep). */
  const until = (pred: (v: ContributorView) => boolean) =>
    new Promise<void>((resolve) => waiters.push({ pred, resolve }));
  const connect = async () => {
    await contributor.start(model, () => {});
    await welcomeTab(sockets.last, opts);
  };
  const frames = () => sockets.last.frames().filter((f): f is TabMessage => f.type !== "ping");
  return { engine, sockets, timers, contributor, until, connect, frames, stored };
}
