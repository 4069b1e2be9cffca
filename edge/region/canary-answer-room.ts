/**
 * Answers kept per (model, canary prompt) in `canary_answers`, confirmed or candidates, at most
 * (docs/limits.md). Only identities that may confirm are kept, one row each (≤ 4,096 chars), but a
 * prompt's dissents are kept beside its known answer, so without a bound every trusted identity
 * answering it differently would add a row for good.
 */
export const MAX_CANARY_ANSWERS = 16;

/**
 * Is there room for `identity`'s answer among those kept for (model, prompt)? Its own row is
 * replaced, so it does not count. When full, the candidates of identities that count for nothing
 * any more (`counts` false: they may neither confirm nor dispute) go first; a confirmed answer
 * never does. Still full: no room, and the answer is not kept.
 */
export function roomForAnswer(
  sql: SqlStorage,
  model: string,
  index: number,
  identity: string,
  counts: (identity: string) => boolean,
): boolean {
  const others = () =>
    sql
      .exec<{ node_id: string; confirmed: number }>(
        `SELECT node_id, confirmed FROM canary_answers
         WHERE model = ? AND prompt_index = ? AND node_id != ?`,
        model,
        index,
        identity,
      )
      .toArray();
  const rows = others();
  if (rows.length < MAX_CANARY_ANSWERS) return true;
  for (const r of rows)
    if (!r.confirmed && !counts(r.node_id))
      sql.exec(
        `DELETE FROM canary_answers WHERE model = ? AND prompt_index = ? AND node_id = ?`,
        model,
        index,
        r.node_id,
      );
  return others().length < MAX_CANARY_ANSWERS;
}
