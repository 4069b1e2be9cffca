import { z } from "zod";
import {
  buildCatalog,
  DEFAULT_MODELS,
  parseExtraModels,
  type ModelRecord,
} from "../shared/models/catalog.js";
import { ModelIdSchema } from "../shared/models/model-id.js";
import type { AppEnv } from "./env.js";
import { log } from "./http/log.js";

/**
 * The model catalog this coordinator serves (GET /v1/catalog): WebLLM's prebuilt list, the
 * operator's EXTRA_MODELS, and the models hosted in its own WEIGHTS bucket (api/weights.ts).
 * Read by the API routes (embeddings.ts, models.ts) and by the Region's credit (what a tab may
 * earn on: credits/credited-models.ts). Tabs may announce any model id (shared/models/model-id.ts:
 * a name, not any text); the catalog is what the coordinator itself lists.
 */

/**
 * The catalog by model id, built once per EXTRA_MODELS value: every chat and completions request
 * asks it, and building it (the defaults are WebLLM's whole prebuilt list, the extras a zod parse)
 * showed in the per-request CPU profile (docs/performance.md).
 */
let catalogById: { raw: string | undefined; byId: Map<string, ModelRecord> } | null = null;

/** The catalog's record of `model` (defaults plus the operator's EXTRA_MODELS), if any. */
export function catalogRecord(env: AppEnv, model: string): ModelRecord | undefined {
  if (!catalogById || catalogById.raw !== env.EXTRA_MODELS) {
    const extra = parseExtraModels(env.EXTRA_MODELS);
    const records = buildCatalog(DEFAULT_MODELS, extra.ok ? extra.records : []);
    catalogById = { raw: env.EXTRA_MODELS, byId: new Map(records.map((r) => [r.model_id, r])) };
  }
  return catalogById.byId.get(model);
}

/** A hosted model as `catalog.json` lists it: URLs are made from the request's origin. */
export const HostedModelSchema = z.object({
  model_id: ModelIdSchema,
  library: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.wasm$/),
  vram_required_MB: z.number().positive().optional(),
  low_resource_required: z.boolean().optional(),
  required_features: z.array(z.string().max(50)).max(10).optional(),
  overrides: z.object({ context_window_size: z.number().int().positive().optional() }).optional(),
});
export type HostedModel = z.infer<typeof HostedModelSchema>;
const HostedCatalogSchema = z.array(HostedModelSchema).max(200);

/** How long a hosted catalog read from R2 is reused by an isolate. */
export const HOSTED_CATALOG_CACHE_MS = 30_000;
let hosted: { at: number; models: HostedModel[] } | null = null;

/** The models hosted in the WEIGHTS bucket (`catalog.json`; empty without the bucket or file). */
export async function hostedModels(env: AppEnv): Promise<HostedModel[]> {
  if (!env.WEIGHTS) return [];
  const now = Date.now();
  if (!hosted || now - hosted.at > HOSTED_CATALOG_CACHE_MS) {
    let models: HostedModel[] = [];
    const obj = await env.WEIGHTS.get("catalog.json");
    if (obj) {
      const parsed = HostedCatalogSchema.safeParse(await obj.json().catch(() => null));
      if (parsed.success) models = parsed.data;
      else log("error", "catalog.json in the WEIGHTS bucket is invalid; no hosted models listed");
    }
    hosted = { at: now, models };
  }
  return hosted.models;
}

/** Forget the cached hosted catalog (tests that register a model). */
export function forgetHostedCatalog(): void {
  hosted = null;
}

/**
 * Most model names outside the catalog a listing shows (GET /v1/models, GET /v1/status/models,
 * /metrics). A tab may announce any 32 names, so names of its own would otherwise list without
 * bound but the number of tabs connected (and grow /metrics by a label per name); catalog models
 * are always listed.
 */
export const MAX_LISTED_OTHER_MODELS = 64;

/**
 * `models` as a listing shows them: every catalog model (WebLLM's list, EXTRA_MODELS, hosted),
 * and of the other names the MAX_LISTED_OTHER_MODELS served by the most tabs; order kept.
 */
export async function listedModels<T extends { id: string; nodes: number }>(
  env: AppEnv,
  models: T[],
): Promise<T[]> {
  const hosted = new Set((await hostedModels(env)).map((m) => m.model_id));
  const listed = (id: string) => catalogRecord(env, id) !== undefined || hosted.has(id);
  const out = namesLeftOut(models, listed);
  return out.size ? models.filter((m) => !out.has(m.id)) : models;
}

/**
 * Of `models`, the names outside the catalog (`catalog`) past the `max` served by the most tabs
 * (then by name): what a listing (`listedModels`) or a region's report (region-views.ts
 * `summarise`) leaves out. Catalog models are never left out.
 */
export function namesLeftOut(
  models: readonly { id: string; nodes: number }[],
  catalog: (id: string) => boolean,
  max = MAX_LISTED_OTHER_MODELS,
): ReadonlySet<string> {
  const others = models.filter((m) => !catalog(m.id));
  if (others.length <= max) return new Set();
  others.sort((a, b) => b.nodes - a.nodes || a.id.localeCompare(b.id));
  return new Set(others.slice(max).map((m) => m.id));
}

/**
 * Is a model in this coordinator's catalog (WebLLM's list, EXTRA_MODELS, the models hosted in
 * WEIGHTS), asked synchronously by a Region object: per finished job (credit,
 * credits/credited-models.ts) and per distinct name in each report to the Directory
 * (region/region-views.ts `summarise`). WebLLM's list and EXTRA_MODELS are in memory; the hosted
 * models are an R2 read, so their ids are kept here and read again, in the background, when a
 * name is not found and the copy is older than the catalog's cache. A hosted model added since
 * counts from the first question after that read.
 */
export class CatalogModels {
  private hosted: { at: number; ids: ReadonlySet<string> } | null = null;
  private reading: Promise<void> | null = null;

  constructor(private readonly env: AppEnv) {}

  has(model: string): boolean {
    if (catalogRecord(this.env, model)) return true;
    void this.refresh();
    return this.hosted?.ids.has(model) ?? false;
  }

  /**
   * The model's context window in tokens as the tabs load it: its catalog record's (WebLLM's, or
   * the operator's EXTRA_MODELS record, which tabs load instead: appConfigFor); undefined when the
   * record does not say (a hosted model's, or one without an override).
   */
  contextTokens(model: string): number | undefined {
    return catalogRecord(this.env, model)?.overrides?.context_window_size;
  }

  /** Read the hosted models' ids again if the copy is stale (one read at a time). */
  refresh(now = Date.now()): Promise<void> {
    if (!this.env.WEIGHTS) return Promise.resolve();
    if (this.hosted && now - this.hosted.at <= HOSTED_CATALOG_CACHE_MS) return Promise.resolve();
    this.reading ??= hostedModels(this.env)
      .then((models) => {
        this.hosted = { at: now, ids: new Set(models.map((m) => m.model_id)) };
      })
      .catch((err: unknown) => log("warn", "hosted catalog unreadable", { error: String(err) }))
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }
}
