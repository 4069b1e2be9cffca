import type { NodeIdStore } from "./contributor.js";

/**
 * The tab's stable identity across reconnects and reloads, so the coordinator can keep its
 * measured speed and reputation. localStorage for now (a dexie database comes later); when storage
 * is unavailable (private mode, blocked) the id lives for this page only.
 */
const KEY = "tabgrid.nodeId";

export function localNodeIdStore(
  storage: Storage | undefined = globalThis.localStorage,
): NodeIdStore {
  let memory: string | undefined;
  return {
    get() {
      try {
        const stored = storage?.getItem(KEY) ?? undefined;
        if (stored && stored.length >= 8 && stored.length <= 64) return stored;
      } catch {
        // Storage blocked: fall through to the in-memory id.
      }
      memory ??= `tab-${crypto.randomUUID()}`;
      return memory;
    },
    set(id) {
      memory = id;
      try {
        storage?.setItem(KEY, id);
      } catch {
        // Keep the in-memory id.
      }
    },
  };
}
