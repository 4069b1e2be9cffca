import { log } from "../http/log.js";
import { migrate, type Migration } from "./migrations.js";

/**
 * One way every Durable Object starts up (partyserver's pattern): in the constructor, migrations
 * then `load` run inside `ctx.blockConcurrencyWhile`, so no request, RPC, WebSocket event or alarm
 * is delivered before the object's state is in memory. A failure is caught inside (a throw inside
 * blockConcurrencyWhile would reset the object and fail everything queued behind it) and rethrown
 * outside, by `ready()`, to whichever event comes next; that event retries the start-up first.
 *
 *   export class ThingDurableObject extends DurableObject<AppEnv> {
 *     private readonly ready: Ready;
 *     private rows!: RowCache;
 *     constructor(ctx: DurableObjectState, env: AppEnv) {
 *       super(ctx, env);
 *       this.ready = startUp(ctx, {
 *         migrations: THING_MIGRATIONS,                 // migrations.ts; applied first
 *         load: async () => { this.rows = new RowCache(ctx.storage.sql); },
 *       });
 *     }
 *     async someRpc() { await this.ready(); ... }      // every entry point, first line
 *   }
 *
 * `ready()` resolves at once once started (one branch, no storage access), so calling it on every
 * event costs nothing. Synchronous set-up that cannot fail (setWebSocketAutoResponse, reading
 * config) may stay in the constructor beside it.
 */
export type Ready = () => Promise<void>;

export interface StartUpOptions {
  /** Schema steps for this object's SQLite database, applied before `load`. */
  migrations?: readonly Migration[];
  /** Load in-memory state from storage (and sockets, after hibernation). */
  load?: () => void | Promise<void>;
}

export function startUp(ctx: DurableObjectState, options: StartUpOptions): Ready {
  let state: "starting" | "started" | "failed" = "starting";
  let failure: unknown = null;

  const run = async (): Promise<void> => {
    await ctx.blockConcurrencyWhile(async () => {
      if (state === "started") return;
      try {
        if (options.migrations) migrate(ctx.storage, options.migrations);
        await options.load?.();
        state = "started";
        failure = null;
      } catch (err) {
        state = "failed";
        failure = err;
        log("error", "durable object start-up failed", {
          id: ctx.id.toString(),
          error: String(err),
          stack: err instanceof Error ? err.stack : undefined,
        });
      }
    });
  };
  const first = run();

  return async function ready(): Promise<void> {
    if (state === "started") return;
    if (state === "starting") await first;
    // The constructor's attempt failed (or this is a later event after a failure): try again once,
    // still under blockConcurrencyWhile, and hand the error to the caller if it fails again.
    if (state === "failed") await run();
    if (state === "failed") throw failure;
  };
}
