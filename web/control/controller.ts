import type { JobEnd } from "../runtime/job-runner.js";
import type { Timers } from "../runtime/timers.js";
import { restAfter, type ControlSettings } from "./settings.js";
import { ThrottleWatch } from "./throttle-watch.js";

/**
 * Keeps the contributor in control: every reason to hold jobs back is a named cause, and the tab
 * takes jobs only while there is none. Causes: the contributor's own pause, running on battery,
 * using the page, the rest between jobs that enforces the GPU share, backing off after a
 * sustained speed drop (throttling), and (embedded on another site) the frame's own notice not
 * being seen on that page.
 */
export type PauseCause = "user" | "battery" | "activity" | "duty" | "throttle" | "unseen";

export const CAUSE_TEXT: Record<PauseCause, string> = {
  user: "paused by you",
  battery: "on battery",
  activity: "you are using this page",
  throttle: "backing off: the GPU slowed down (thermal or power throttling?)",
  duty: "resting (GPU share limit)",
  unseen: "this notice is hidden or covered on the page",
};

/** Which cause to show first when several hold. */
const PRIORITY: PauseCause[] = ["user", "unseen", "battery", "throttle", "activity", "duty"];

export interface PauseTarget {
  pause(reason?: string): void;
  resume(): void;
}

export interface ControllerView {
  causes: PauseCause[];
  /** The cause shown to the contributor, if any. */
  headline: string | null;
  /** GPU share in force (the setting, lowered while backing off). */
  effectiveShare: number;
  /** Speed vs own baseline for the current model, if known. */
  speedRatio: number | null;
  /** When the current rest ends (timers clock), for duty cycling. */
  restUntil: number | null;
}

export interface ControllerOptions {
  target: PauseTarget;
  settings: ControlSettings;
  timers: Timers;
  onChange?: (view: ControllerView) => void;
  throttle?: ThrottleWatch;
  /** How long to back off after throttling is detected, ms. */
  backoffMs?: number;
}

export class Controller {
  private readonly causes = new Set<PauseCause>();
  private settings: ControlSettings;
  private readonly throttle: ThrottleWatch;
  private restTimer: number | null = null;
  private backoffTimer: number | null = null;
  private restUntil: number | null = null;
  private shareFactor = 1;
  private speedRatio: number | null = null;
  private onBattery = false;
  private active = false;

  constructor(private readonly opts: ControllerOptions) {
    this.settings = opts.settings;
    this.throttle = opts.throttle ?? new ThrottleWatch();
  }

  get view(): ControllerView {
    const causes = PRIORITY.filter((c) => this.causes.has(c));
    return {
      causes,
      headline: causes[0] ? CAUSE_TEXT[causes[0]] : null,
      effectiveShare: this.effectiveShare(),
      speedRatio: this.speedRatio,
      restUntil: this.restUntil,
    };
  }

  setUserPaused(paused: boolean): void {
    this.set("user", paused);
  }

  updateSettings(settings: ControlSettings): void {
    this.settings = settings;
    this.set("battery", settings.pauseOnBattery && this.onBattery);
    this.set("activity", settings.pauseWhileActive && this.active);
    this.emit();
  }

  batteryChanged(onBattery: boolean): void {
    this.onBattery = onBattery;
    this.set("battery", this.settings.pauseOnBattery && onBattery);
  }

  activityChanged(active: boolean): void {
    this.active = active;
    this.set("activity", this.settings.pauseWhileActive && active);
  }

  /**
   * The embedded frame's notice (with its Stop) is not in front of the visitor: no new job until it
   * is again (web/frame/frame-main.ts).
   */
  setUnseen(unseen: boolean): void {
    this.set("unseen", unseen);
  }

  /** Called by the contributor when a job ends, before it turns idle (see ContributorOptions). */
  jobEnded(end: JobEnd): void {
    if (end.outcome === "done" && end.decodeTokensPerSecond !== null) {
      const v = this.throttle.record(end.model, end.decodeTokensPerSecond, end.completionTokens);
      this.speedRatio = v.ratio;
      if (v.throttled && !this.causes.has("throttle")) this.backOff(end.model);
      // Speed is back near the baseline: give the share back step by step.
      else if (v.ratio !== null && v.ratio >= 0.9)
        this.shareFactor = Math.min(1, this.shareFactor * 2);
    }
    const rest = restAfter(end.durationMs, this.effectiveShare());
    if (rest > 0) this.rest(rest);
    else this.emit();
  }

  dispose(): void {
    if (this.restTimer !== null) this.opts.timers.clearTimeout(this.restTimer);
    if (this.backoffTimer !== null) this.opts.timers.clearTimeout(this.backoffTimer);
  }

  private effectiveShare(): number {
    return Math.max(0.1, this.settings.gpuShare * this.shareFactor);
  }

  private rest(ms: number): void {
    const timers = this.opts.timers;
    if (this.restTimer !== null) timers.clearTimeout(this.restTimer);
    this.restUntil = timers.now() + ms;
    this.set("duty", true);
    this.restTimer = timers.setTimeout(() => {
      this.restTimer = null;
      this.restUntil = null;
      this.set("duty", false);
    }, ms);
  }

  /** Halve the GPU share and pause for a while; then measure again against the same baseline. */
  private backOff(model: string): void {
    this.shareFactor = Math.max(0.25, this.shareFactor / 2);
    this.set("throttle", true);
    this.backoffTimer = this.opts.timers.setTimeout(() => {
      this.backoffTimer = null;
      this.throttle.reset(model);
      this.set("throttle", false);
    }, this.opts.backoffMs ?? 60_000);
  }

  private set(cause: PauseCause, on: boolean): void {
    const had = this.causes.has(cause);
    if (on === had) return;
    if (on) this.causes.add(cause);
    else this.causes.delete(cause);
    this.apply();
  }

  private apply(): void {
    const view = this.view;
    if (view.headline) this.opts.target.pause(view.headline);
    else this.opts.target.resume();
    this.emit();
  }

  private emit(): void {
    this.opts.onChange?.(this.view);
  }
}
