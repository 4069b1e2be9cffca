export * from "./binomial.js";
export * from "./canary-prompts.js";
export * from "./keyed-prng.js";
export * from "./policy.js";
export * from "./quarantine-causes.js";
export * from "./reputation.js";
export * from "./binding.js";
export * from "./anonymous.js";
