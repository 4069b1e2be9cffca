/**
 * Canary prompts: fixed before any traffic, phrased like the chat a client sends, so a tab cannot
 * tell a canary from a client job by its wording. The coordinator picks one with its keyed PRNG,
 * sends it greedily (temperature 0, a coordinator seed, a short `max_tokens`) and compares the
 * answer with the answer the network already knows for that (model, quantization): see
 * reputation.ts and edge/region/canaries.ts.
 */
export const CANARY_PROMPTS: readonly string[] = [
  "what's a good name for a grey cat?",
  "Can you explain what a hash table is in two sentences?",
  "write a haiku about the sea in autumn",
  "How do I reverse a list in Python?",
  "what is the capital of Australia and why isn't it Sydney",
  "Give me three tips for sleeping better.",
  "translate 'good morning, how are you' into Spanish",
  "What's the difference between weather and climate?",
  "summarize the plot of Romeo and Juliet in one line",
  "why is the sky blue? keep it short",
  "suggest a quick vegetarian dinner",
  "How many minutes are there in a week?",
  "explain recursion to a ten year old",
  "what does HTTP 404 mean",
  "Name two planets with rings.",
  "rewrite this more politely: send me the file now",
];
