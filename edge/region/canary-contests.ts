import { log } from "../http/log.js";

/**
 * Contested canary prompts (canaries.ts; docs/trust.md "Canaries"): two identities that may
 * confirm agree on an answer other than the known one. The coordinator cannot tell which pair
 * lies, and a known answer is binding evidence against every tab judged on it, so the prompt
 * judges no one from then on and no answer is learned for it again — otherwise it would flip
 * between the two camps' answers. Nothing ends a contest: audits still judge both camps' client
 * answers.
 */
export class CanaryContests {
  constructor(private readonly sql: SqlStorage) {}

  isContested(model: string, index: number): boolean {
    return (
      this.sql
        .exec(`SELECT 1 FROM canary_contests WHERE model = ? AND prompt_index = ?`, model, index)
        .toArray().length > 0
    );
  }

  /** The contested prompt indices of `model`. */
  of(model: string): Set<number> {
    return new Set(
      this.sql
        .exec<{ prompt_index: number }>(
          `SELECT prompt_index FROM canary_contests WHERE model = ?`,
          model,
        )
        .toArray()
        .map((r) => r.prompt_index),
    );
  }

  /**
   * Contest a prompt: its confirmed answer becomes a candidate like the others (so the tabs'
   * canaries of it judge no one, and knownPrompts no longer offers it to tabs that cannot confirm)
   * and the prompt is recorded, so no pair confirms an answer for it again.
   */
  contest(model: string, index: number): void {
    this.sql.exec(
      `UPDATE canary_answers SET confirmed = 0, confirmed_with = NULL
       WHERE model = ? AND prompt_index = ?`,
      model,
      index,
    );
    this.sql.exec(
      `INSERT OR IGNORE INTO canary_contests (model, prompt_index, contested_at) VALUES (?, ?, ?)`,
      model,
      index,
      Date.now(),
    );
    log("warn", "canary prompt contested", { model, prompt: index });
  }
}
