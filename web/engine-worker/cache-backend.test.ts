import { describe, expect, it } from "vitest";
import { chooseCacheBackend, classifyLoadFailure, type StorageGlobals } from "./cache-backend.js";

/** The storage probe with the browser's answers scripted: allowed, refused, or both refused. */
const refused = () =>
  Promise.reject(
    new DOMException("Failed to execute 'open' on 'CacheStorage': denied", "SecurityError"),
  );

function idb(ok: boolean): Pick<IDBFactory, "open"> {
  return {
    open() {
      const req = {
        result: { close() {} },
        error: ok
          ? null
          : new DOMException("The user denied permission to access the database.", "UnknownError"),
      } as unknown as IDBOpenDBRequest;
      queueMicrotask(() => {
        const handler = ok ? req.onsuccess : req.onerror;
        handler?.call(req, new Event(ok ? "success" : "error"));
      });
      return req;
    },
  };
}

describe("chooseCacheBackend", () => {
  it("uses the Cache API where the browser allows it", async () => {
    const env: StorageGlobals = {
      caches: { open: async () => ({}) as Cache },
      indexedDB: idb(true),
    };
    expect(await chooseCacheBackend(env)).toEqual({ backend: "cache", cacheRefused: null });
  });

  it("falls back to IndexedDB where the Cache API is refused, keeping the browser's reason", async () => {
    const choice = await chooseCacheBackend({ caches: { open: refused }, indexedDB: idb(true) });
    expect(choice.backend).toBe("indexeddb");
    expect(choice.cacheRefused).toMatch(
      /^SecurityError: Failed to execute 'open' on 'CacheStorage'/,
    );
  });

  it("fails as a storage problem (not a download) where both are refused", async () => {
    const err = await chooseCacheBackend({
      caches: { open: refused },
      indexedDB: idb(false),
    }).then(
      () => new Error("it chose a backend"),
      (e: unknown) => e as Error,
    );
    expect(err).toMatchObject({ code: "load_failed" });
    expect(err.message).toMatch(/^this browser does not let the tab store the model's files here/);
    expect(err.message).toMatch(/Cache API \(SecurityError.*IndexedDB \(UnknownError/);
  });
});

describe("classifyLoadFailure", () => {
  const cache = { backend: "cache" as const, cacheRefused: null };
  it("tells refused or full storage from failed downloads by what failed", () => {
    expect(
      classifyLoadFailure("SecurityError: Failed to execute 'open' on 'CacheStorage'", cache)?.kind,
    ).toBe("storage");
    expect(classifyLoadFailure("QuotaExceededError: quota exceeded", cache)?.message).toMatch(
      /storage is full/,
    );
    expect(classifyLoadFailure("TypeError: Failed to fetch", cache)?.kind).toBe("download");
    expect(
      classifyLoadFailure("Failed to execute 'add' on 'Cache': Request failed", cache)?.kind,
    ).toBe("download");
    expect(classifyLoadFailure("ShaderF16SupportError: needs shader-f16", cache)).toBeNull();
  });
});
