/**
 * Why an identity was quarantined, in the coordinator's words (the reasons shared/trust/
 * reputation.ts writes use these phrases) and in plain words for the contributor page.
 */
export const QUARANTINE_PHRASES = {
  tokens: "re-scored tokens implausible",
  stops: "answers ended where the model would not stop",
  canaries: "canaries failed",
  vectors: "re-embedded vectors disagreed",
  counts: "completion-token counts inflated",
  logprobs: "reported log-probabilities misstated",
} as const;

export type QuarantineCause = keyof typeof QUARANTINE_PHRASES | "operator";

/** Which check a quarantine reason comes from; anything else was an operator's decision. */
export function quarantineCause(reason: string): QuarantineCause {
  for (const [cause, phrase] of Object.entries(QUARANTINE_PHRASES)) {
    if (reason.includes(phrase)) return cause as QuarantineCause;
  }
  return "operator";
}

/** What each cause means, for a contributor who never read docs/trust.md. */
export const QUARANTINE_EXPLANATIONS: Record<QuarantineCause, string> = {
  tokens:
    "other tabs running the same model re-checked some of its answers and found their words far " +
    "less likely than that model makes them. The tab is most likely running a different or " +
    "damaged copy of the model, or its GPU computes wrongly",
  stops:
    "other tabs re-checked some of its answers and found them cut off where the model would have " +
    "gone on",
  canaries:
    "it answered test questions, whose answers the network already knows, differently from " +
    "every other tab serving that model",
  vectors:
    "other tabs running the same embedding model re-computed some of its vectors and got " +
    "different ones. The tab is most likely running a different or damaged copy of the model, " +
    "or its GPU computes wrongly",
  counts:
    "other tabs running the same model counted the tokens of some of its answers with that " +
    "model's tokenizer and found far fewer than it reported — and reported tokens are what " +
    "clients pay for and contributors are credited for",
  logprobs:
    "other tabs running the same model re-computed the token probabilities it reported to " +
    "clients and found them far from what that model gives — the answers' words may be right, " +
    "but the numbers sent with them were not the model's",
  operator: "an operator of the network took it out of service",
};
