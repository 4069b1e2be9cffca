import type { ModelRecord } from "../../shared/models/catalog.js";
import type { AdapterInfo, CreditBalance, HelloGpu } from "../../shared/protocol/node-messages.js";
import { Controller, type ControllerView } from "../control/controller.js";
import type { ControlSettings } from "../control/settings.js";
import { watchActivity, watchBattery } from "../control/signals.js";
import { peerDirectSender, type DirectSender } from "../direct/tab-sender.js";
import { RestartingEngine } from "../engine-client/restarting-engine.js";
import { startEngineWorker, type WorkerEngine } from "../engine-client/worker-engine.js";
import type { OnProgress } from "../engine/inference-engine.js";
import { connectUrl } from "./catalog-client.js";
import { Contributor, type TabIdentity } from "./contributor.js";
import type { JobEnd } from "./job-runner.js";
import { browserTabIdentity } from "./tab-identity.js";
import type { SocketLike } from "./tab-socket.js";
import type { ContributorView } from "./tab-status.js";
import { browserTimers, type Timers } from "./timers.js";
import { startTabLink, type TabLink } from "../tab-link/link-client.js";
import { followLifecycle } from "./page-lifecycle.js";

/**
 * The one contribution start-up, used by the full contributor page (web/main.ts) and the embedded
 * frame (web/frame/frame-main.ts): the engine Worker behind `RestartingEngine` (a crashed Worker is
 * reported to the contributor, which reloads its model into a fresh one — see recovery.ts), the
 * `Contributor` with the tab's identity and the direct path, and the `Controller` that enforces the
 * GPU share, throttling back-off and, where the page can see them, battery and activity pauses.
 * The coordinator socket and the runtime's timers run in the tab-link Worker (web/tab-link/), so a
 * hidden tab keeps serving; the page's freeze and resume are followed (runtime/page-lifecycle.ts).
 * Nothing here loads a model or opens a socket: `start(model)` does, after consent.
 */

/** The engine the tab serves with: the production Worker, restarted after a crash. */
export function createEngine(spawn: () => WorkerEngine = startEngineWorker): RestartingEngine {
  return new RestartingEngine(spawn);
}

export interface ContributionOptions {
  agent: string;
  adapter: AdapterInfo;
  settings: ControlSettings;
  onView(view: ContributorView): void;
  onControl?: (view: ControllerView) => void;
  /**
   * A client job ended, after the controller has seen it (its rest or back-off is decided first).
   * Audits reach only the controller.
   */
  onJobEnd?: (end: JobEnd) => void;
  onCredit?: (jobId: string, credit: number) => void;
  /** The identity's balance in the coordinator's credit ledger. */
  onBalance?: (balance: CreditBalance) => void;
  /** GPU class and benchmark for `hello`, read at each (re)connect. */
  gpu?: () => HelloGpu | undefined;
  /**
   * Start paused by the contributor (the controller's "user" cause): the page carries a Pause
   * into the next contribution, so the tab loads, connects and waits until they resume.
   */
  paused?: boolean;
  /** How long to back off after throttling (controller default when absent). */
  backoffMs?: number;
  /**
   * Follow the battery and the contributor's activity on `document` (the full page). A
   * cross-origin frame can read neither, so it leaves this out.
   */
  signals?: { document: Document; quietMs: number };
  /** The engine; default `createEngine(spawnWorker)`. The page passes the one its benchmark uses. */
  engine?: RestartingEngine;
  /** Starts an engine Worker (default: the production one); tests pass their own. */
  spawnWorker?: () => WorkerEngine;
  // The browser's own parts by default; tests pass their own.
  url?: string;
  identity?: TabIdentity;
  /** Callers that asked for the direct WebRTC path also get tokens over a data channel. */
  direct?: DirectSender;
  /** An in-process socket (unit tests); without it the socket lives in the tab-link Worker. */
  createSocket?: (url: string) => SocketLike;
  /** The tab link to use (default: a new tab-link Worker, unless `createSocket` is given). */
  tabLink?: TabLink | null;
  timers?: Timers;
  /** Where Page Lifecycle `freeze`/`resume` fire (default: `document`, where there is one). */
  lifecycle?: EventTarget | null;
}

export interface Contribution {
  readonly contributor: Contributor;
  readonly controller: Controller;
  readonly engine: RestartingEngine;
  /** Load the model, then connect (Contributor.start). */
  start(model: ModelRecord, onProgress: OnProgress): Promise<void>;
  /** Stop serving (the page is going away): a running job is cancelled, the socket closes. */
  stop(): void;
  /** Stop and release everything: the controls, the watchers, the socket and the engine Worker. */
  dispose(): void;
}

export function startContributing(opts: ContributionOptions): Contribution {
  const tabLink =
    opts.tabLink !== undefined ? opts.tabLink : opts.createSocket ? null : startTabLink();
  const timers = opts.timers ?? tabLink?.timers ?? browserTimers;
  const engine = opts.engine ?? createEngine(opts.spawnWorker);
  const contributor = new Contributor({
    engine,
    url: opts.url ?? connectUrl(),
    adapter: opts.adapter,
    agent: opts.agent,
    identity: opts.identity ?? browserTabIdentity(),
    direct: opts.direct ?? peerDirectSender({ origin: location.origin }),
    timers,
    onChange: opts.onView,
    // Runs before the tab turns idle, so a rest it decides is announced in job.done. Audits are
    // GPU work the share counts, but no client job for the page's ledger.
    onJobEnd: (end) => {
      controller.jobEnded(end);
      if (!end.audit) opts.onJobEnd?.(end);
    },
    ...(opts.gpu ? { gpu: opts.gpu } : {}),
    ...(opts.onCredit ? { onCredit: opts.onCredit } : {}),
    ...(opts.onBalance ? { onBalance: opts.onBalance } : {}),
    ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
    ...(tabLink ? { link: (o) => tabLink.connect(o) } : {}),
  });
  const controller = new Controller({
    target: contributor,
    settings: opts.settings,
    timers,
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
    ...(opts.onControl ? { onChange: opts.onControl } : {}),
  });
  if (opts.paused) controller.setUserPaused(true);
  // A dead Worker outside a job: reload the model, which lands in a fresh Worker.
  engine.onCrash((e) => contributor.engineFailed(e));

  const lifecycle =
    opts.lifecycle !== undefined
      ? opts.lifecycle
      : typeof document !== "undefined"
        ? document
        : null;
  const unfollow = lifecycle ? followLifecycle(lifecycle, contributor) : () => {};

  let unwatch = () => {};
  if (opts.signals) {
    // Power and presence are followed from the start, so a tab on battery never begins serving;
    // both stop with dispose (the page outlives this contribution: "Try again", a take-over).
    const battery = new AbortController();
    void watchBattery((onBattery) => controller.batteryChanged(onBattery), {
      signal: battery.signal,
    });
    const stopActivity = watchActivity(
      opts.signals.document,
      (a) => controller.activityChanged(a),
      { timers, quietMs: opts.signals.quietMs },
    );
    unwatch = () => {
      battery.abort();
      stopActivity();
    };
  }

  return {
    contributor,
    controller,
    engine,
    start: (model, onProgress) => contributor.start(model, onProgress),
    stop: () => contributor.stop(),
    dispose() {
      unwatch();
      unfollow();
      controller.dispose();
      contributor.stop();
      tabLink?.terminate();
      engine.terminate();
    },
  };
}
