import { describe, expect, it } from "vitest";
import {
  claimEngine,
  engineHeldElsewhere,
  ENGINE_LOCK,
  type LockManagerLike,
} from "./engine-lock.js";

/** A one-lock Web Locks stand-in with the semantics the claim relies on (ifAvailable, steal). */
function fakeLocks(): LockManagerLike {
  let holder: { reject: (e: Error) => void } | null = null;
  return {
    async request(name, options, callback) {
      if (holder && options.ifAvailable) return callback(null);
      if (holder && options.steal) {
        const stolen = new Error("stolen");
        stolen.name = "AbortError";
        holder.reject(stolen);
      }
      return new Promise((resolve, reject) => {
        const me = { reject };
        holder = me;
        void callback({ name }).then((v) => {
          if (holder === me) holder = null;
          resolve(v);
        });
      });
    },
    async query() {
      return { held: holder ? [{ name: ENGINE_LOCK }] : [] };
    },
  };
}

describe("one engine per browser", () => {
  it("grants the first tab, refuses the second, and lets it take over", async () => {
    const locks = fakeLocks();
    expect(await engineHeldElsewhere(locks)).toBe(false);
    const first = await claimEngine(false, locks);
    expect(first).not.toBeNull();
    expect(await engineHeldElsewhere(locks)).toBe(true);
    expect(await claimEngine(false, locks)).toBeNull();
    let lost = false;
    void first!.lost.then(() => (lost = true));
    const second = await claimEngine(true, locks);
    expect(second).not.toBeNull();
    await first!.lost;
    expect(lost).toBe(true);
    second!.release();
  });

  it("grants every tab where the browser has no Web Locks", async () => {
    expect(await claimEngine(false, null)).not.toBeNull();
    expect(await engineHeldElsewhere(null)).toBe(false);
  });
});
