import type { RegionCredits } from "../credits/region-credits.js";
import type { Audits } from "./audits.js";
import type { JobMachine } from "./job-machine.js";
import type { RegionReport } from "./region-report.js";
import type { RegionTimer } from "./region-timers.js";
import type { TabChannel } from "./tab-channel.js";
import type { WaitingMoves } from "./waiting-moves.js";

export interface RegionAlarmDeps {
  machine: JobMachine;
  channel: TabChannel;
  report: RegionReport;
  /** Absent without a continuation port: waiting jobs then stay in this object's line. */
  moves?: WaitingMoves;
  /** Answer audits (their deadlines). */
  audits: Audits;
  /** Absent without a ledger: nothing to send it. */
  credits?: RegionCredits;
}

/**
 * One handler per kind of Region timer. The timer table runs these from `alarm()` and deletes a
 * timer only once its handler returned; a handler that throws leaves its timer armed and the
 * alarm is retried (timer-table.ts).
 */
export function regionAlarms({
  machine,
  channel,
  report,
  moves,
  audits,
  credits,
}: RegionAlarmDeps): (timer: RegionTimer) => Promise<void> {
  return async function onRegionTimer(timer) {
    switch (timer.kind) {
      case "lease":
        return machine.onLeaseDue(timer.jobId);
      case "wait":
        return machine.onWaitDue(timer.jobId);
      case "detach":
        return machine.onDetachDue(timer.jobId);
      case "expire":
        return machine.onExpireDue(timer.jobId);
      case "report":
        return report.fired();
      case "moves":
        return moves?.pass();
      case "liveness":
        // Stale tabs are closed by the channel; their jobs move on in the state machine.
        for (const left of await channel.sweep()) await machine.onTabEvent(left);
        return;
      case "hello":
        return channel.sweepSilentSockets();
      case "audit":
        return audits.onDeadline(timer.auditId);
      case "ledger":
        return credits?.retry();
      default: {
        const unreachable: never = timer;
        return unreachable;
      }
    }
  };
}
