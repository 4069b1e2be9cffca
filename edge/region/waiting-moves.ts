import { log } from "../http/log.js";
import {
  lineEstimateMs,
  WAITING_MOVE_SCAN,
  WAITING_MOVE_TRIES,
  type RegionOffers,
} from "../../shared/scheduling/spillover.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
import { continuationRequest, mayContinueElsewhere } from "./continuation.js";
import type { JobMachine } from "./job-machine.js";
import type { JobRow, JobStore } from "./job-store.js";
import type { RegionTimer } from "./region-timers.js";
import type { RemoteAttempts } from "./remote-attempts.js";
import { shardName } from "./shard-name.js";
import type { TimerTable } from "./timer-table.js";

export interface WaitingMovesDeps {
  jobs: JobStore;
  timers: TimerTable<RegionTimer>;
  machine: JobMachine;
  remote: RemoteAttempts;
  /** This object's offers with `waiting` jobs ahead in its line (what its report would say). */
  offersAt: (waiting: number) => RegionOffers;
  /** The job's request as this object's scheduler sees it. */
  matchOf: (row: JobRow) => MatchRequest;
  /** Time between passes (WAITING_MOVE_MS; WAITING_MOVE_INTERVAL_MS by default). */
  intervalMs: number;
}

const MOVES: RegionTimer = { kind: "moves" };

/**
 * Moving jobs that wait in this object's line to another Region object expected to start them
 * sooner (docs/routing.md "Between regions"). A request waits in the line chosen at its arrival;
 * when later another object's tab frees up first, the job would otherwise stay. While the line is
 * not empty, a pass runs at most every WAITING_MOVE_MS (1 s by default; a `moves` timer on the object's
 * one alarm): for the first WAITING_MOVE_SCAN jobs that never started, the job's expected first
 * token here (this object's offer with the jobs ahead of it, `lineEstimateMs`) is set against the
 * neighbours' offers in the routing view this isolate caches (one read per pass), and at most
 * WAITING_MOVE_TRIES are asked — each with `acceptUpToMs`, so a neighbour whose summary was stale
 * declines and writes nothing, and the job keeps its place. A job taken is followed like a
 * cross-shard continuation from offset 0: the job id, the client's stream and cancellation stay
 * here, and the remote job (a continuation) moves no further.
 */
export class WaitingMoves {
  private running = false;

  constructor(private readonly d: WaitingMovesDeps) {}

  /** A job joined the line: make sure a pass is due. */
  async arm(): Promise<void> {
    if (!this.d.timers.has(MOVES)) await this.d.timers.set(MOVES, Date.now() + this.d.intervalMs);
  }

  /** The `moves` timer: one bounded pass, then the next one while jobs still wait. */
  async pass(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.movePass();
    } finally {
      this.running = false;
    }
    if (this.d.jobs.waitingCount() > 0) await this.arm();
  }

  private async movePass(): Promise<void> {
    const { jobs, remote, machine } = this.d;
    // Jobs that never started, in line order (failovers waiting for a tab move by their own rule).
    const line = jobs.queued().filter((r) => r.attempts === 0);
    if (line.length === 0) return;
    const planner = await remote.planner();
    if (!planner) return;
    const offers = new Map<number, RegionOffers>();
    const offersAt = (ahead: number) => {
      let o = offers.get(ahead);
      if (!o) offers.set(ahead, (o = this.d.offersAt(ahead)));
      return o;
    };
    let tries = 0;
    let moved = 0;
    for (const [i, row] of line.slice(0, WAITING_MOVE_SCAN).entries()) {
      if (tries >= WAITING_MOVE_TRIES) break;
      if (!mayContinueElsewhere(row, jobs.tried(row))) continue;
      const now = Date.now();
      const req = this.d.matchOf(row);
      const hereMs = lineEstimateMs(offersAt(i - moved)[row.model], req, now);
      if (jobs.get(row.id)?.state !== "queued") continue;
      // A continuation from offset 0: the same job, its matching facts, owner and answer mode.
      const request = continuationRequest(jobs, row);
      const plan = planner(request, hereMs, now);
      if (!plan) continue;
      tries++;
      const opened = await remote.openOn(plan.target, {
        ...request,
        acceptUpToMs: plan.acceptUpToMs,
      });
      if (!opened) {
        // Declined (its view of the neighbour was stale) or unreachable: the job keeps its place.
        log("info", "waiting job not moved: the neighbour declined", {
          jobId: row.id,
          to: shardName(plan.target),
        });
        continue;
      }
      // movedWaiting logs the move (with the remote job, which names its object).
      if (await machine.movedWaiting(row.id, opened, row.owner)) moved++;
    }
  }
}
