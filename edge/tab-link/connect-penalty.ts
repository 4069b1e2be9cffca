import { BoundedMap } from "../http/bounded-map.js";
import { FLOOD_PENALTY_MS } from "../region/tab-connects.js";

/**
 * After a tab link closes a socket for flooding (4009 RateLimited), its address may not open a tab
 * socket for FLOOD_PENALTY_MS. Without it a flooder reconnects at once (well within
 * TAB_CONNECTS_PER_MIN): every reconnect costs an upgrade, a challenge, a signature check and a
 * registration in the Region, and then its next burst and the backlog behind it (bench:abuse).
 *
 * Two places count it: this isolate's memory, checked before the Worker calls anything (no
 * directory, no Region object: a refused reconnect costs one map lookup), and the Region's SQLite
 * (tab-connects.ts `penalize`, from tab-channel.ts when the link's 4009 reaches it), which neither
 * hibernation nor a reconnect through another isolate escapes. Both answer `floodPenaltyError`.
 */
/** Addresses remembered at most (oldest penalty forgotten first): bounded memory. */
const MAX_ADDRESSES = 10_000;

const until = new BoundedMap<string, number>(MAX_ADDRESSES);

/** Refuse `ip`'s tab connects for FLOOD_PENALTY_MS from `now`. */
export function penalizeFlooder(ip: string, now = Date.now()): void {
  until.set(ip, now + FLOOD_PENALTY_MS);
}

/** Whole seconds `ip` must still wait before opening a tab socket, or null. */
export function floodPenaltyS(ip: string, now = Date.now()): number | null {
  const end = until.get(ip);
  if (end === undefined) return null;
  if (end <= now) {
    until.delete(ip);
    return null;
  }
  return Math.ceil((end - now) / 1000);
}
