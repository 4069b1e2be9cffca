import { log } from "../http/log.js";
import { stopCut } from "./answer-budget.js";
import type { JobReaders } from "./job-readers.js";
import { JobStore } from "./job-store.js";
import type { TextPosition } from "./job-text.js";
import type { Placement } from "./placement.js";
import type { RegionStats } from "./region-stats.js";
import type { TabChannel, TabFrame } from "./tab-channel.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import { cutToBytes, utf8Bytes } from "./usage-bounds.js";

export interface TextDeliveryDeps {
  jobs: JobStore;
  readers: JobReaders;
  /** Asks a tab to resend (`job.resend`). */
  channel: TabChannel;
  /** A hedged job's first text (hedging.ts). */
  placement: Placement;
  stats: RegionStats;
  /** Frames dropped as late or out of order are noted against the tab. */
  trust: TabTrust;
}

type DeltaFrame = Extract<TabFrame, { type: "job.delta" }>;

/** What ended the answer while its text was taken, if anything. */
export type TextEnd = "over" | "stop" | null;

/**
 * The text of a job's current attempt on its way in: which part of a delta is new, a resend asked
 * for a gap, and the new text stored and relayed within the job's bounds. It changes no job's
 * state: it says what ended the answer, and the job machine (job-machine.ts) acts on it.
 */
export class TextDelivery {
  constructor(private readonly d: TextDeliveryDeps) {}

  /**
   * New text of the job's current attempt (a tab's delta, or a remote job's), bounded and checked
   * the same way whoever wrote it: the answer may not grow past what max_tokens allows
   * (usage-bounds.ts; the excess is never stored or sent), and after a failover a stop string may
   * straddle two attempts, which neither writer can see. Says what ended the answer, if anything.
   * An empty delta (a tab numbering its deltas may send one) only takes its `seq`: it is no first
   * token, so it neither times the tab nor ends a hedge race.
   */
  takeText(jobId: string, nodeId: string, at: TextPosition, incoming: string): TextEnd {
    const { jobs, readers, placement } = this.d;
    if (!incoming) {
      jobs.append(jobId, "", 0);
      return null;
    }
    // The attempt's first text, whatever `seq` it came with.
    const first = at.chars === at.attemptStart;
    const room = JobStore.room(at);
    const cut = at.attempts < 2 ? null : this.stopAcrossAttempts(nodeId, jobId, incoming);
    const stopped = cut === null ? incoming : incoming.slice(0, cut);
    const bytes = utf8Bytes(stopped);
    const over = bytes > room;
    const text = over ? cutToBytes(stopped, room) : stopped;
    jobs.append(jobId, text, over ? utf8Bytes(text) : bytes);
    if (text) readers.push(jobId, { type: "delta", text });
    // Once per attempt, after the readers have the text: the first token's time (and, by the
    // read, the first batch) is written.
    if (first && text) {
      jobs.markFirstToken(jobId, Date.now());
      this.d.stats.firstToken(jobs.get(jobId));
      placement.hedging.firstToken(jobId);
    }
    return over ? "over" : cut !== null ? "stop" : null;
  }

  /**
   * The part of a delta that is new, or null when none is. A protocol 4 tab says where its text
   * starts (`offset`): text the coordinator already holds is skipped (a resend overlaps), and a
   * delta past the end means a batch was lost with an evicted object — the tab is asked to resend
   * from what is held. Older tabs number their deltas: only the next `seq` is taken.
   */
  newText(tab: TabRecord, msg: DeltaFrame, at: TextPosition): string | null {
    if (msg.offset === undefined) {
      if (msg.seq === at.nextSeq) return msg.text;
      this.d.trust.rejections.note(tab.publicId, "delta dropped (duplicate or out of order)", {
        jobId: msg.jobId,
        seq: msg.seq,
      });
      return null;
    }
    const held = at.chars - at.attemptStart;
    if (msg.offset > held) {
      this.askResend(tab, msg.jobId, at, held);
      return null;
    }
    const text = msg.text.slice(held - msg.offset);
    return text ? text : null;
  }

  /** A job.done whose `chars` is past the text held: ask for the rest; true when asked. */
  missing(tab: TabRecord, jobId: string, chars: number): boolean {
    const at = this.d.jobs.position(jobId, tab.tabId);
    if (!at) return false;
    const held = at.chars - at.attemptStart;
    if (chars <= held) return false;
    this.askResend(tab, jobId, at, held);
    return true;
  }

  private askResend(tab: TabRecord, jobId: string, at: TextPosition, held: number): void {
    // Once per gap: the deltas already on their way past the gap need no question each.
    if (at.resendAsked === held) return;
    at.resendAsked = held;
    log("info", "asking the tab to resend", { jobId, offset: held });
    this.d.channel.send(tab, { type: "job.resend", jobId, offset: held });
  }

  /** Characters of `incoming` to keep when a stop string ends the answer across attempts. */
  private stopAcrossAttempts(nodeId: string, jobId: string, incoming: string): number | null {
    const row = this.d.jobs.get(jobId);
    if (!row || row.attempts < 2 || row.node_id !== nodeId) return null;
    const stop = this.d.jobs.spec(row).sampling.stop;
    return stop?.length ? stopCut(row.text, incoming, stop) : null;
  }
}
