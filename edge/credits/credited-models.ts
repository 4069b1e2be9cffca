import type { AppEnv } from "../env.js";
import { CatalogModels } from "../model-catalog.js";

/**
 * Which models a tab earns credit on: those of the catalog this coordinator serves — WebLLM's
 * prebuilt list, the operator's EXTRA_MODELS and the models hosted in its WEIGHTS bucket
 * (model-catalog.ts `CatalogModels`). A tab may announce any model name, and a model no other tab
 * serves is never audited (no verifier for it), so a contributor announcing a name of its own and
 * sending it requests was paid for whatever bytes it wrote. Jobs for other names are still
 * served; they earn 0 (docs/credits.md).
 *
 * Asked once per finished job, synchronously; a hosted model added since the last read of the
 * hosted catalog is credited from the first job after the next read.
 */
export class CreditedModels {
  private readonly catalog: CatalogModels;

  constructor(
    env: AppEnv,
    /** "any": every model earns (CREDIT_MODELS=any, the workerd tests' made-up names). */
    readonly mode: "catalog" | "any",
  ) {
    this.catalog = new CatalogModels(env);
  }

  has(model: string): boolean {
    return this.mode === "any" || this.catalog.has(model);
  }

  /** Read the hosted models' ids again if the copy is stale (one read at a time). */
  refresh(now = Date.now()): Promise<void> {
    return this.mode === "any" ? Promise.resolve() : this.catalog.refresh(now);
  }
}
