import type { NodeState, TabMessage, TrustNotice } from "../../shared/protocol/node-messages.js";
import type { Connection } from "./tab-socket.js";

/**
 * What the tab is doing, as the contributor sees it (`ContributorView`) and as the coordinator
 * hears it (`status`). `TabStatus` is the one owner of the view and of the pause request: the job
 * runner, recovery and the contributor's controls all change the tab's state through it, and every
 * state change is announced to the coordinator here.
 */
export interface ContributorView {
  state: NodeState;
  connection: Connection | "not started";
  connectionDetail: string | null;
  model: string | null;
  /** The id the coordinator welcomed this tab with (the wire calls it `nodeId`). */
  tabId: string | null;
  jobsServed: number;
  lastTokensPerSecond: number | null;
  /** A problem the contributor must act on (e.g. the GPU device was lost). */
  error: string | null;
  /** Why the tab is paused or loading, in plain words (also sent in `status`). */
  reason: string | null;
  /** The job being served now: its model and roughly where its client is, when known. */
  serving: ServingJob | null;
  /**
   * This tab's trust state as the coordinator last told it (`trust` frame; docs/trust.md): null
   * until it does (an older coordinator never does).
   */
  trust: TrustStanding | null;
}

export type TrustStanding = Omit<TrustNotice, "type">;

export interface ServingJob {
  model: string;
  /** City level ("Frankfurt, DE"), from the coordinator's view of the request; null if unknown. */
  clientPlace: string | null;
}

export class TabStatus {
  private readonly view: ContributorView = {
    state: "loading",
    connection: "not started",
    connectionDetail: null,
    model: null,
    tabId: null,
    jobsServed: 0,
    lastTokensPerSecond: null,
    error: null,
    reason: null,
    serving: null,
    trust: null,
  };
  /** Jobs are held back (a running job finishes first); set by pause(), recovery giving up. */
  pauseRequested = false;

  constructor(
    /** Sends a frame to the coordinator (dropped while the socket is not open). */
    private readonly send: (msg: TabMessage) => void,
    private readonly onChange: (view: ContributorView) => void,
  ) {}

  get snapshot(): Readonly<ContributorView> {
    return { ...this.view };
  }

  /** The current view, read-only (no copy). */
  get now(): Readonly<ContributorView> {
    return this.view;
  }

  /** Where the tab goes when it is neither busy nor loading. */
  get resting(): "paused" | "idle" {
    return this.pauseRequested ? "paused" : "idle";
  }

  models(): string[] {
    return this.view.model ? [this.view.model] : [];
  }

  frame(): TabMessage {
    const reason = this.view.reason;
    return {
      type: "status",
      state: this.view.state,
      models: this.models(),
      ...(reason && this.view.state !== "idle" ? { reason } : {}),
    };
  }

  /** Tell the coordinator the current state again (e.g. a new reason in the same state). */
  announce(): void {
    this.send(this.frame());
  }

  update(patch: Partial<ContributorView>): void {
    Object.assign(this.view, patch);
    this.onChange(this.snapshot);
  }

  /** `patch` is applied in the same view update (even when the state does not change). */
  setState(state: NodeState, patch: Partial<ContributorView> = {}): void {
    if (state === this.view.state) {
      if (Object.keys(patch).length) this.update(patch);
      return;
    }
    this.update({ ...patch, state });
    this.announce();
  }
}
