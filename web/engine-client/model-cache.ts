import type { ModelRecord } from "../../shared/models/catalog.js";

/**
 * Model cache management from the page. WebLLM keeps downloads in the Cache API under three
 * scopes (its `CacheScope`): weights under the model URL, the config next to it, the WebGPU library
 * under `model_lib`. Listing and deleting here works on the same entries as WebLLM's
 * `hasModelInCache` / `deleteModelAllInfoInCache`, without loading WebLLM into the page.
 */
export const WEBLLM_CACHE_SCOPES = ["webllm/model", "webllm/config", "webllm/wasm"] as const;

export interface CachedModel {
  modelId: string;
  bytes: number;
  files: number;
}

function belongsTo(url: string, m: ModelRecord): boolean {
  const base = m.model.endsWith("/") ? m.model : `${m.model}/`;
  return url.startsWith(base) || url === m.model_lib;
}

async function entrySize(cache: Cache, req: Request): Promise<number> {
  const res = await cache.match(req);
  if (!res) return 0;
  const header = Number(res.headers.get("content-length"));
  if (Number.isFinite(header) && header > 0) return header;
  return (await res.blob()).size;
}

/** Cached catalog models with their size on disk. */
export async function listCachedModels(
  catalog: readonly ModelRecord[],
  storage: CacheStorage = caches,
): Promise<CachedModel[]> {
  const found = new Map<string, CachedModel>();
  for (const scope of WEBLLM_CACHE_SCOPES) {
    if (!(await storage.has(scope))) continue;
    const cache = await storage.open(scope);
    for (const req of await cache.keys()) {
      const model = catalog.find((m) => belongsTo(req.url, m));
      if (!model) continue;
      const entry = found.get(model.model_id) ?? { modelId: model.model_id, bytes: 0, files: 0 };
      entry.bytes += await entrySize(cache, req);
      entry.files += 1;
      found.set(model.model_id, entry);
    }
  }
  return [...found.values()].sort((a, b) => b.bytes - a.bytes);
}

/** Delete every cached file of one model (weights, config, library). Returns files removed. */
export async function deleteCachedModel(
  model: ModelRecord,
  storage: CacheStorage = caches,
): Promise<number> {
  let removed = 0;
  for (const scope of WEBLLM_CACHE_SCOPES) {
    if (!(await storage.has(scope))) continue;
    const cache = await storage.open(scope);
    for (const req of await cache.keys()) {
      if (belongsTo(req.url, model) && (await cache.delete(req))) removed++;
    }
  }
  return removed;
}

export interface StorageInfo {
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
}

export async function storageInfo(nav: Navigator = navigator): Promise<StorageInfo> {
  const s = nav.storage;
  if (!s) return { usage: null, quota: null, persisted: null };
  const [estimate, persisted] = await Promise.all([
    s.estimate?.().catch(() => null) ?? null,
    s.persisted?.().catch(() => null) ?? null,
  ]);
  return { usage: estimate?.usage ?? null, quota: estimate?.quota ?? null, persisted };
}

/** Ask the browser not to evict the cache under storage pressure (it may say no). */
export async function requestPersistence(nav: Navigator = navigator): Promise<boolean> {
  return (await nav.storage?.persist?.().catch(() => false)) ?? false;
}
