import { directoryStub, forgetRoutingCache } from "../../edge/directory/directory-client.js";
import { shardStub } from "../../edge/region/region-stub.js";
import { evenLeaves, leafFor, shardHash } from "../../edge/region/shard-map.js";
import { addressKey } from "../../edge/http/address-key.js";
import { appEnv } from "./tab-helpers.js";
import { ScriptedTab } from "./scripted-tab.js";

/**
 * Region shards in workerd tests: wnam (where tabs and requests without a location land) served
 * by several objects, tabs placed on a chosen shard by their address, and the Directory's view.
 */

/** Serve wnam from `count` shards. */
export async function sharded(count: number): Promise<void> {
  await directoryStub(appEnv).setShards("wnam", count);
  forgetRoutingCache();
}

/** `n` addresses whose hash puts them on shard `k` of `count` even shards. */
export function addressesOn(k: number, count: number, n: number, tag: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const ip = `10.${tag.length}.${i >> 8}.${i & 255}-${tag}`;
    // The Worker places a tab by its address key (edge/http/address-key.ts).
    if (leafFor(evenLeaves(count), shardHash(addressKey(ip))).k === k) out.push(ip);
  }
  return out;
}

/** A registered tab connecting from `ip` (the address places it on a shard), kept in `list`. */
export async function tabFrom(
  list: ScriptedTab[],
  ip: string,
  models: string[],
  protocol?: number,
): Promise<ScriptedTab> {
  const t = await ScriptedTab.open("", { "cf-connecting-ip": ip });
  list.push(t);
  await t.handshake({ models, ...(protocol !== undefined ? { protocol } : {}) });
  return t;
}

export async function tabsOn(k: number): Promise<number> {
  return (await shardStub(appEnv, { hint: "wnam", k }).listTabs()).length;
}

export const routing = () => directoryStub(appEnv).routing();
export type Routing = Awaited<ReturnType<typeof routing>>;

/** Poll the Directory until `check` passes (shards report as their tabs change). */
export async function untilRouting(check: (v: Routing) => boolean): Promise<Routing> {
  const end = Date.now() + 5000;
  for (;;) {
    const v = await routing();
    if (check(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const idleOn = (v: Routing, name: string, model: string) =>
  v.summaries[name]?.models[model]?.idle ?? 0;
