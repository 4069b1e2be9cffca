import { describe, expect, it } from "vitest";
import { FakeBattery } from "../../test/support/fake-battery.js";
import { watchBattery } from "./signals.js";

const navWith = (battery: FakeBattery) =>
  ({ getBattery: async () => battery }) as unknown as Navigator;

describe("watchBattery", () => {
  it("reports the power source now and on each change, until its signal aborts", async () => {
    const battery = new FakeBattery();
    const seen: boolean[] = [];
    const watching = new AbortController();
    const ok = await watchBattery((onBattery) => seen.push(onBattery), {
      signal: watching.signal,
      nav: navWith(battery),
    });
    expect(ok).toBe(true);
    battery.unplug();
    expect(seen).toEqual([false, true]);
    watching.abort();
    battery.charging = true;
    battery.dispatchEvent(new Event("chargingchange"));
    battery.dispatchEvent(new Event("levelchange"));
    expect(seen).toEqual([false, true]);
  });

  it("adds nothing when its signal aborted while the browser looked up the battery", async () => {
    const battery = new FakeBattery();
    const seen: boolean[] = [];
    const watching = new AbortController();
    const watched = watchBattery((onBattery) => seen.push(onBattery), {
      signal: watching.signal,
      nav: navWith(battery),
    });
    watching.abort();
    expect(await watched).toBe(false);
    battery.unplug();
    expect(seen).toEqual([]);
  });

  it("resolves false without the Battery Status API", async () => {
    const watching = new AbortController();
    expect(await watchBattery(() => {}, { signal: watching.signal, nav: {} as Navigator })).toBe(
      false,
    );
  });
});
