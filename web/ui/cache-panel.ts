import type { ModelRecord } from "../../shared/models/catalog.js";
import {
  deleteCachedModel,
  listCachedModels,
  requestPersistence,
  storageInfo,
} from "../engine-client/model-cache.js";
import { fill, formatBytes, h } from "./dom.js";

/**
 * Downloaded models and the browser's storage: list cached models with their size, delete one,
 * show the storage estimate, and ask the browser to keep the cache (navigator.storage.persist()).
 */
export async function renderCachePanel(
  region: HTMLElement,
  catalog: readonly ModelRecord[],
  inUse: () => string | null,
): Promise<void> {
  const refresh = () => void renderCachePanel(region, catalog, inUse);
  const [models, info] = await Promise.all([
    listCachedModels(catalog).catch(() => []),
    storageInfo().catch(() => ({ usage: null, quota: null, persisted: null })),
  ]);
  const persist = h(
    "button",
    { id: "persist-storage", type: "button" },
    "Keep downloads (persistent storage)",
  );
  persist.addEventListener("click", async () => {
    const granted = await requestPersistence();
    persist.textContent = granted
      ? "Storage is persistent"
      : "The browser declined (it decides by site usage)";
    persist.disabled = granted;
  });
  if (info.persisted) {
    persist.textContent = "Storage is persistent";
    persist.disabled = true;
  }
  fill(
    region,
    h("h2", {}, "Downloaded models"),
    models.length
      ? h(
          "ul",
          { id: "cached-models" },
          ...models.map((m) => {
            const del = h(
              "button",
              { type: "button", "aria-label": `Delete ${m.modelId} from this browser` },
              "Delete",
            );
            if (inUse() === m.modelId) del.disabled = true;
            del.addEventListener("click", async () => {
              const record = catalog.find((r) => r.model_id === m.modelId);
              if (record) await deleteCachedModel(record);
              refresh();
            });
            return h(
              "li",
              { "data-model": m.modelId },
              h("code", {}, m.modelId),
              ` — ${formatBytes(m.bytes)} `,
              del,
            );
          }),
        )
      : h("p", { id: "cached-models-empty" }, "No models downloaded in this browser yet."),
    h(
      "p",
      { "data-field": "storage-estimate" },
      info.usage !== null && info.quota !== null
        ? `This site uses ${formatBytes(info.usage)} of ${formatBytes(info.quota)} the browser allows (an estimate from the browser).`
        : "The browser does not report storage use.",
    ),
    h("p", {}, persist),
  );
}
