/**
 * Version of the contributor channel protocol. A tab states the version it speaks in its first
 * frame (`hello`); the coordinator closes with `CloseCode.ProtocolTooOld` when the tab is older than
 * `MIN_PROTOCOL_VERSION`, so a stale cached page reloads instead of misbehaving.
 */
export const PROTOCOL_VERSION = 10;
export const MIN_PROTOCOL_VERSION = 1;

/**
 * What each version added, so both sides send a newer frame only to a peer that speaks it.
 * 2: `job.progress` (tab → coordinator) while a job prefills.
 * 3: `trust` (coordinator → tab): the identity's trust state, and why it was quarantined;
 *    `credit.balance` (coordinator → tab): the identity's balance in the credit ledger.
 * 4: `offset` on `job.delta`, `chars` on `job.done`, and `job.resend` (coordinator → tab), so a
 *    tab resends text an evicted coordinator had not yet written (docs/performance.md).
 * 5: `job.assign` with `queued: true` to a busy tab, which holds it and starts it the moment its
 *    running job ends; `job.done` may carry the tab's own `prefillMs`.
 * 6: embedding jobs: `job.assign` with input kind "embedding", answered by `job.vectors`. Only a
 *    tab that loaded an embedding model gets one, and only a protocol-6 page loads one as such
 *    (older pages drop `model_type` from the catalog record and would ask WebLLM for a chat model).
 * 7: `job.checkpoint` (tab → coordinator): while a job's caller reads it over the WebRTC data
 *    channel, the tab sends the coordinator its text in checkpoints (every K tokens or T ms, with
 *    the batch's SHA-256) instead of every coalesced `job.delta` (docs/embed.md, relay-light).
 * 8: `answerMaxTokens` on a failover's `job.assign`: the tab counts the delivered text's tokens
 *    with its own tokenizer and writes at most the rest of the client's `max_tokens` (reported as
 *    `continuedTokens`), where an older tab gets the coordinator's bound of one token per
 *    delivered byte and a long answer could end at the failover (docs/failure-handling.md).
 * 9: an `audit.assign` is scored from the distribution the serving tab sampled from: under the
 *    job's `logit_bias`, and under its grammar (`constraint`) when the grammar takes the encoder's
 *    tokens; and it may carry `prefix`, the answer's text before the window to score (an audit of
 *    any part of a long answer, not only its first `maxTokens` tokens). An older page scores
 *    without bias or grammar, where a token the client or the grammar forced can read as
 *    implausible, and would score a window as the answer's start: such audits go only to
 *    protocol-9 verifiers.
 * 10: `audit.result` may carry `reported`: for an audit of a job that asked for logprobs, each
 *    scored token's log-probability (and the likeliest values) as WebLLM reports them — after the
 *    job's penalties and temperature, which the plain scores leave out — so the coordinator can
 *    confirm the serving tab's claimed logprobs. Such audits go only to protocol-10 verifiers.
 */
export const PROGRESS_SINCE_PROTOCOL = 2;
export const TRUST_SINCE_PROTOCOL = 3;
export const BALANCE_SINCE_PROTOCOL = 3;
export const RESEND_SINCE_PROTOCOL = 4;
export const QUEUE_SINCE_PROTOCOL = 5;
export const CHECKPOINT_SINCE_PROTOCOL = 7;
export const COUNTED_CONTINUATION_SINCE_PROTOCOL = 8;
export const BIASED_SCORE_SINCE_PROTOCOL = 9;
export const CONFIRMED_LOGPROBS_SINCE_PROTOCOL = 10;

/** Whether the coordinator can talk to a tab that speaks `version`. */
export function protocolCompatibility(version: number): "ok" | "too_old" | "too_new" {
  if (version < MIN_PROTOCOL_VERSION) return "too_old";
  if (version > PROTOCOL_VERSION) return "too_new";
  return "ok";
}
