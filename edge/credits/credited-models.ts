import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import { catalogRecord, HOSTED_CATALOG_CACHE_MS, hostedModels } from "../model-catalog.js";

/**
 * Which models a tab earns credit on: those of the catalog this coordinator serves — WebLLM's
 * prebuilt list, the operator's EXTRA_MODELS and the models hosted in its WEIGHTS bucket
 * (model-catalog.ts). A tab may announce any model name, and a model no other tab serves is never
 * audited (no verifier for it), so a contributor announcing a name of its own and sending it
 * requests was paid for whatever bytes it wrote. Jobs for other names are still served; they
 * earn 0 (docs/credits.md).
 *
 * Asked once per finished job, synchronously. WebLLM's list and EXTRA_MODELS are in memory; the
 * hosted models are an R2 read, so their ids are kept here and read again, in the background,
 * when a tab joins or a job asks and the copy is older than the catalog's cache. A hosted model
 * added since is credited from the first job after that read.
 */
export class CreditedModels {
  private hosted: { at: number; ids: ReadonlySet<string> } | null = null;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly env: AppEnv,
    /** "any": every model earns (CREDIT_MODELS=any, the workerd tests' made-up names). */
    readonly mode: "catalog" | "any",
  ) {}

  has(model: string): boolean {
    if (this.mode === "any" || catalogRecord(this.env, model)) return true;
    void this.refresh();
    return this.hosted?.ids.has(model) ?? false;
  }

  /** Read the hosted models' ids again if the copy is stale (one read at a time). */
  refresh(now = Date.now()): Promise<void> {
    if (this.mode === "any" || !this.env.WEIGHTS) return Promise.resolve();
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
