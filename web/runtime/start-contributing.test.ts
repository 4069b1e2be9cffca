import * as Comlink from "comlink";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { DeterministicEngine } from "../../test/support/deterministic-engine.js";
import { FakeBattery } from "../../test/support/fake-battery.js";
import { contributionOptions, welcomeTab } from "../../test/support/contributor-harness.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import { normalizeSettings } from "../control/settings.js";
import { WorkerEngine } from "../engine-client/worker-engine.js";
import { exposeEngine } from "../engine-worker/engine-host.js";
import pageSource from "../main.ts?raw";
import frameSource from "../frame/frame-main.ts?raw";
import { startContributing } from "./start-contributing.js";
import type { ContributorView } from "./tab-status.js";

/**
 * The one contribution start-up, as the embedded frame calls it (no engine passed in, so the
 * start-up makes its own RestartingEngine): a Worker that dies is replaced and the model reloaded
 * into the fresh one, and the tab serves again. "Workers" here are MessageChannels serving the
 * deterministic engine through the product's own comlink host.
 */
const model: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};
const channels: MessageChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) (c.port1.close(), c.port2.close());
});

function workers() {
  const ports: MessagePort[] = [];
  const spawn = () => {
    const channel = new MessageChannel();
    channels.push(channel);
    exposeEngine(new DeterministicEngine(0), channel.port1 as unknown as Comlink.Endpoint);
    const port = channel.port2 as unknown as Worker & { terminate(): void };
    port.terminate = () => channel.port2.close();
    ports.push(channel.port2);
    return new WorkerEngine(port);
  };
  // What the browser does when a Worker dies: an "error" event on the Worker object.
  const crash = (i: number) => ports[i]!.dispatchEvent(new Event("error"));
  return { spawn, crash, ports };
}

/** The embedded frame's settings: a GPU share from the site, no battery or activity watching. */
const FRAME_SETTINGS = normalizeSettings({
  gpuShare: 1,
  pauseOnBattery: false,
  pauseWhileActive: false,
});

describe("startContributing", () => {
  it("restarts a crashed engine Worker, reloads the model into it and serves again", async () => {
    const { spawn, crash, ports } = workers();
    const sockets = new ScriptedSockets();
    const views: ContributorView[] = [];
    const contribution = startContributing(
      contributionOptions(sockets, {
        settings: FRAME_SETTINGS,
        onView: (v) => views.push(v),
        spawnWorker: spawn,
        timers: new ManualTimers(),
      }),
    );
    await contribution.start(model, () => {});
    const socket = sockets.last;
    await welcomeTab(socket);
    expect(contribution.contributor.snapshot).toMatchObject({
      state: "idle",
      model: model.model_id,
    });

    crash(0);
    await vi.waitFor(() => expect(ports).toHaveLength(2));
    await vi.waitFor(() =>
      expect(contribution.contributor.snapshot).toMatchObject({
        state: "idle",
        model: model.model_id,
        reason: null,
      }),
    );
    expect(views.some((v) => v.state === "loading" && v.reason?.startsWith("worker_crashed"))).toBe(
      true,
    );
    expect(contribution.engine.restarts).toBe(1);

    // The fresh Worker serves the next job.
    socket.receive({
      type: "job.assign",
      job: {
        id: "job-after-crash",
        model: model.model_id,
        input: { kind: "chat", messages: [{ role: "user", content: "still there?" }] },
        sampling: { max_tokens: 4 },
      },
      attempt: 1,
    });
    await vi.waitFor(() =>
      expect(socket.frames().find((f) => f.type === "job.done")).toMatchObject({
        jobId: "job-after-crash",
        finishReason: "stop",
      }),
    );
    contribution.dispose();
  });

  it("starts paused when asked (a Pause the page carries into a new contribution)", async () => {
    const sockets = new ScriptedSockets();
    const contribution = startContributing(
      contributionOptions(sockets, {
        settings: FRAME_SETTINGS,
        paused: true,
        spawnWorker: workers().spawn,
        timers: new ManualTimers(),
      }),
    );
    expect(contribution.controller.view.causes).toEqual(["user"]);
    await contribution.start(model, () => {});
    expect(contribution.contributor.snapshot).toMatchObject({
      state: "paused",
      reason: "paused by you",
    });
    const socket = sockets.last;
    await welcomeTab(socket);
    expect(socket.frames()[0]).toMatchObject({ type: "hello", state: "paused" });
    contribution.controller.setUserPaused(false);
    expect(contribution.contributor.snapshot.state).toBe("idle");
    contribution.dispose();
  });

  it("stops following the battery when disposed, so an old controller never acts again", async () => {
    const battery = new FakeBattery();
    vi.stubGlobal("navigator", { getBattery: async () => battery });
    try {
      const page = Object.assign(new EventTarget(), { visibilityState: "visible" });
      /** A contribution as the full page makes it ("Try again" and a take-over make another). */
      const contribute = () => {
        const causes: string[][] = [];
        const contribution = startContributing(
          contributionOptions(new ScriptedSockets(), {
            settings: normalizeSettings({ gpuShare: 1, pauseOnBattery: true }),
            signals: { document: page as unknown as Document, quietMs: 60_000 },
            onControl: (view) => causes.push(view.causes),
            spawnWorker: workers().spawn,
            timers: new ManualTimers(),
          }),
        );
        return { contribution, causes };
      };
      const first = contribute();
      // Its listeners are on the battery (getBattery resolved) before it is disposed.
      await vi.waitFor(() => expect(battery.added).toBe(2));
      first.contribution.dispose();
      const second = contribute();
      battery.unplug();
      await vi.waitFor(() => expect(second.causes).toEqual([["battery"]]));
      // The disposed contribution's controller heard nothing.
      expect(first.causes).toEqual([]);
      expect(first.contribution.controller.view.causes).toEqual([]);
      second.contribution.dispose();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("is the start-up of both the full page and the embedded frame", () => {
    for (const source of [pageSource, frameSource]) {
      expect(source).toMatch(/\bstartContributing\(/);
      // Neither entry point assembles its own engine, contributor or controls.
      expect(source).not.toMatch(
        /new (Contributor|Controller|RestartingEngine)\b|startEngineWorker/,
      );
    }
    // The frame lets the start-up make its engine (a RestartingEngine over the production Worker).
    expect(frameSource).not.toMatch(/\bengine:/);
  });
});
