import { SELF, env, runInDurableObject } from "cloudflare:test";
import { afterEach } from "vitest";
import { ChatCompletionChunkSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { AppEnv } from "../../edge/env.js";
import type { JobView } from "../../edge/region/job-view.js";
import type { RegionParts } from "../../edge/region/region-parts.js";
import {
  regionStub,
  shardOfJobId,
  shardStub,
  type RegionName,
} from "../../edge/region/region-stub.js";
import { forgetRoutingCache } from "../../edge/directory/directory-client.js";
import { ScriptedTab } from "./scripted-tab.js";
import { readSse } from "./sse.js";

/**
 * What the coordinator's workerd tests share: scripted tabs closed after every test, requests to
 * the API as a client sends them, and views into a Region object. Each test file keeps only the
 * helpers particular to it.
 */

export const appEnv = env as unknown as AppEnv;
const ORIGIN = "http://tabgrid.test";

/**
 * Tabs opened by one test file, closed after each of its tests. Call once at the top of the file.
 * `list` is the live pool (tests that replace tabs mid-test edit it).
 */
export function useTabs() {
  const list: ScriptedTab[] = [];
  afterEach(() => {
    list.splice(0).forEach((t) => t.close());
  });
  return {
    list,
    /**
     * A registered tab serving `models` (signed with `keys`, at `loc`, speaking `protocol`, when
     * given).
     */
    async tab(
      models: string[],
      opts: { keys?: CryptoKeyPair; loc?: { lat: number; lon: number }; protocol?: number } = {},
    ): Promise<ScriptedTab> {
      const t = await ScriptedTab.connect(models, opts.keys, opts.loc, opts.protocol);
      list.push(t);
      return t;
    },
  };
}

/**
 * A known tab and a new one serving `model` (at `loc`): the known one has one job timed on it, a
 * completion of `prompt` whose first token came a second after it accepted — slower than a new tab
 * is believed to be (150 tokens/s until timed), but within twice that. A budgeted request for a
 * prompt as long then goes to the new tab and is hedged on the known one (edge/region/hedging.ts).
 * A completion, not a chat: a served chat would be a conversation the tab is kept for.
 */
export async function knownAndNewTabs(
  tabs: ReturnType<typeof useTabs>,
  model: string,
  prompt: string,
  opts: {
    loc?: { lat: number; lon: number };
    headers?: Record<string, string>;
    /** The protocol both tabs speak (e.g. 5, so a job may be queued behind the known one). */
    protocol?: number;
  } = {},
): Promise<{ known: ScriptedTab; fresh: ScriptedTab }> {
  const where = {
    ...(opts.loc ? { loc: opts.loc } : {}),
    ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
  };
  const known = await tabs.tab([model], where);
  const warm = post("/completions", { model, prompt }, opts.headers);
  const job = await known.nextJob();
  known.accept(job);
  await new Promise((r) => setTimeout(r, 1000));
  known.delta(job, 0, "warm");
  known.done(job, "stop", { prompt_tokens: 100 }); // the prompt's size, as the engine counts it
  const status = (await warm).status;
  if (status !== 200) throw new Error(`the known tab's timed job answered ${status}`);
  const fresh = await tabs.tab([model], where);
  return { known, fresh };
}

/**
 * A streamed chat request of `maxTokens` from a client at `loc` (the location header is honoured
 * in tests), routed by the Directory as it is now, not by this isolate's second-old copy.
 */
export function streamFrom(
  loc: { lat: number; lon: number },
  model: string,
  maxTokens: number,
): Promise<Response> {
  forgetRoutingCache();
  return chat(
    model,
    { stream: true, max_tokens: maxTokens },
    { "x-tabgrid-location": `${loc.lat},${loc.lon}` },
  );
}

/** POST a JSON body (or a raw string) to /v1<path>. */
export function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/v1${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** POST /v1/chat/completions with one user message ("hi") plus `extra` body fields. */
export function chat(
  model: string,
  extra: object = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  return post(
    "/chat/completions",
    { model, messages: [{ role: "user", content: "hi" }], ...extra },
    headers,
  );
}

/** The text of a streamed chat answer, whether it ended with [DONE], and its error if any. */
export async function streamText(
  res: Response,
): Promise<{ text: string; done: boolean; error?: string }> {
  const data = await readSse(res);
  let text = "";
  let error: string | undefined;
  for (const d of data) {
    if (d === "[DONE]") continue;
    const json = JSON.parse(d) as object;
    if ("error" in json) error = OpenAIErrorBodySchema.parse(json).error.message;
    else text += ChatCompletionChunkSchema.parse(json).choices[0]?.delta.content ?? "";
  }
  return { text, done: data.at(-1) === "[DONE]", ...(error ? { error } : {}) };
}

/**
 * A job's view straight from its Region object (GET /v1/jobs/:id also needs the job's read token,
 * which only the creating response carries: see `jobToken`).
 */
export async function getJob(id: string): Promise<JobView> {
  const shard = shardOfJobId(id);
  const job = shard ? await shardStub(appEnv, shard).readJob(id) : null;
  if (!job) throw new Error(`no job ${id}`);
  return job.view;
}

/**
 * Read what no API shows of a job's Region object (its parts: job store, matcher, job machine),
 * inside the object, e.g. to wait until a frame was taken.
 */
export async function inJobRegion<T>(jobId: string, read: (parts: RegionParts) => T): Promise<T> {
  const shard = shardOfJobId(jobId);
  if (!shard) throw new Error(`not a job id: ${jobId}`);
  return runInDurableObject(shardStub(appEnv, shard), (obj) =>
    read((obj as unknown as { parts: RegionParts }).parts),
  );
}

/** The read-token header of the response that created a job, to send back on /v1/jobs/:id. */
export function jobToken(res: Response): Record<string, string> {
  return { "x-tabgrid-job-token": res.headers.get("x-tabgrid-job-token") ?? "" };
}

/** Job counts by state in one Region object (default: wnam, where unplaced tests land). */
export function regionCounts(region: RegionName = "wnam"): Promise<Record<string, number>> {
  return regionStub(appEnv, region).jobCounts();
}

/** The regions whose tabs serve `model`, from the public GET /v1/nodes. */
export async function tabRegions(model: string): Promise<string[]> {
  const body = (await (await SELF.fetch(`${ORIGIN}/v1/nodes`)).json()) as {
    data: Array<{ models: string[]; region: string }>;
  };
  return body.data.filter((n) => n.models.includes(model)).map((n) => n.region);
}
