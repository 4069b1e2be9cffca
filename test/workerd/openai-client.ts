import { SELF } from "cloudflare:test";
import OpenAI from "openai";

/**
 * The official `openai` client as a workerd test uses it: pointed at the coordinator under test
 * through `SELF` (no network), no API key needed (the anonymous tier is on in the edge project),
 * and no retries, so a test sees the coordinator's first answer.
 */
export function workerdOpenAI(): OpenAI {
  return new OpenAI({
    baseURL: "http://tabgrid.test/v1",
    apiKey: "unused-locally",
    fetch: (url, init) => SELF.fetch(url as string, init as RequestInit),
    maxRetries: 0,
  });
}
