import { EngineError } from "../engine/inference-engine.js";

/**
 * Where WebLLM keeps a model's files in this context. The Cache API is WebLLM's default and best
 * tested; but a browser may refuse it where it still allows IndexedDB (an embedded frame on another
 * site whose storage the browser restricts: `SecurityError: Failed to execute 'open' on
 * 'CacheStorage'`). Then the model goes to WebLLM's IndexedDB cache instead. Where both are refused
 * (third-party storage blocked outright), loading fails with a storage error that says so — not
 * with a download error that blames the network.
 */
export type CacheBackend = "cache" | "indexeddb";

export interface CacheChoice {
  backend: CacheBackend;
  /** Why the Cache API was not used (the browser's own error), when it was not. */
  cacheRefused: string | null;
}

/** The storage APIs the probe needs (the Worker's globals; injected by units). */
export interface StorageGlobals {
  caches?: Pick<CacheStorage, "open">;
  indexedDB?: Pick<IDBFactory, "open">;
}

const PROBE_DB = "tabgrid-storage-probe";

function describe(err: unknown): string {
  if (err instanceof Error || (typeof err === "object" && err !== null && "name" in err)) {
    const e = err as { name: string; message?: string };
    return e.message ? `${e.name}: ${e.message}` : e.name;
  }
  return String(err);
}

function openProbeDb(idb: Pick<IDBFactory, "open">): Promise<void> {
  return new Promise((resolve, reject) => {
    let req: IDBOpenDBRequest;
    try {
      // A database of its own: opening WebLLM's names first would create them without the
      // object stores WebLLM adds in its upgrade handler.
      req = idb.open(PROBE_DB);
    } catch (err) {
      reject(err);
      return;
    }
    req.onsuccess = () => {
      req.result.close();
      resolve();
    };
    req.onerror = () => reject(req.error ?? new Error("IndexedDB open failed"));
    req.onblocked = () => resolve();
  });
}

/** The storage this context allows for the model, preferring the Cache API. */
export async function chooseCacheBackend(
  env: StorageGlobals = globalThis as StorageGlobals,
): Promise<CacheChoice> {
  // Not a browser at all (no storage API to ask): let WebLLM use its default and fail on its own.
  if (!env.caches && !env.indexedDB) return { backend: "cache", cacheRefused: null };
  let cacheRefused: string;
  try {
    if (!env.caches) throw new Error("this context has no Cache API");
    await env.caches.open("webllm/model");
    return { backend: "cache", cacheRefused: null };
  } catch (err) {
    cacheRefused = describe(err);
  }
  try {
    if (!env.indexedDB) throw new Error("this context has no IndexedDB");
    await openProbeDb(env.indexedDB);
    return { backend: "indexeddb", cacheRefused };
  } catch (err) {
    throw new EngineError(
      "load_failed",
      `${STORAGE_REFUSED}: the browser refused both the Cache API (${cacheRefused}) and IndexedDB (${describe(err)}). ` +
        "An embedded frame needs the browser to allow its (partitioned) third-party storage; the full contributor page works without it.",
    );
  }
}

/** How a load error caused by refused or full storage starts (the frame and tests read it). */
export const STORAGE_REFUSED = "this browser does not let the tab store the model's files here";

/** How a load error caused by the network or the model host starts. */
export const DOWNLOAD_FAILED =
  "could not download the model's files (network or model host unavailable)";

/** The backend in words, for progress text and error messages. */
export function cacheNote(choice: CacheChoice): string {
  return choice.backend === "cache"
    ? "model cache: Cache API"
    : `model cache: IndexedDB, because the Cache API is refused here (${choice.cacheRefused})`;
}

const STORAGE_ERROR =
  /SecurityError|QuotaExceeded|denied permission to access the database|The operation is insecure|Access is denied|storage.*(blocked|denied)|NotAllowedError/i;
const DOWNLOAD_ERROR =
  /Failed to fetch|NetworkError|Load failed|net::ERR_|ERR_NAME_NOT_RESOLVED|Request failed|fetch failed|HTTP (status )?\d{3}|status(Text)?:? ?\d{3}|Cannot fetch|network/i;

/**
 * What a load failure was, by what actually failed: refused or full storage, or the download.
 * Anything else (the GPU, the model library) is returned as it is.
 */
export function classifyLoadFailure(
  message: string,
  choice: CacheChoice,
): { kind: "storage" | "download"; message: string } | null {
  if (STORAGE_ERROR.test(message)) {
    const full = /QuotaExceeded/i.test(message);
    return {
      kind: "storage",
      message: `${STORAGE_REFUSED} (${full ? "storage is full" : "storage refused"}; ${cacheNote(choice)}): ${message}`,
    };
  }
  if (DOWNLOAD_ERROR.test(message)) {
    return { kind: "download", message: `${DOWNLOAD_FAILED} (${cacheNote(choice)}): ${message}` };
  }
  return null;
}
