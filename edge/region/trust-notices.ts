import type { TrustNotice } from "../../shared/protocol/node-messages.js";
import type { Reputation } from "./reputation.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabTrust } from "./tab-trust.js";

/**
 * Tells a connected tab its identity's trust state (`trust` frame, protocol 3) whenever it changed
 * since the last one it was sent: at join, after a finished job, after evidence about it
 * (reputation.ts), on quarantine and release. The contributor page shows it in plain words
 * (web/ui/trust-words.ts), so a contributor learns when and why the tab was quarantined.
 */
export class TrustNotices {
  /** The last notice each tab was sent (its JSON), so an unchanged state is not sent again. */
  private readonly sent = new Map<string, string>();

  constructor(
    private readonly channel: TabChannel,
    private readonly trust: TabTrust,
    private readonly reputation: Reputation | undefined,
  ) {}

  notice(tabId: string): TrustNotice {
    const view = this.trust.view(tabId);
    return {
      type: "trust",
      state: view.state,
      jobs: view.jobs,
      probationJobs: this.trust.policy.probationJobs,
      faults: view.faults,
      audits: this.reputation?.auditCounts(tabId) ?? { passed: 0, failed: 0 },
      ...(view.quarantinedAt !== undefined ? { quarantinedAt: view.quarantinedAt } : {}),
      ...(view.reason !== undefined ? { reason: view.reason.slice(0, 500) } : {}),
    };
  }

  /** Send the tab its state if it changed (a tab that is not connected is told at its next join). */
  tell(tabId: string): void {
    const tab = this.channel.tabs.get(tabId);
    if (!tab) return;
    const msg = this.notice(tabId);
    const json = JSON.stringify(msg);
    if (this.sent.get(tabId) === json) return;
    if (this.channel.send(tab, msg)) this.sent.set(tabId, json);
  }

  forget(tabId: string): void {
    this.sent.delete(tabId);
  }
}
