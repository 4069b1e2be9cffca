import { describe, expect, it } from "vitest";
import { cannedFetch, chunk, sse } from "../../test/support/canned-fetch.js";
import { Tabgrid } from "./client.js";
import { InternalServerError, RateLimitError, ServiceUnavailableError } from "./errors.js";

/** SDK behaviour that the real coordinator rarely shows on demand: errors inside a stream, 503/429. */
const JOB = "job_wnam_0123456789abcdef0123456789abcdef";
const params = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };

describe("Tabgrid SDK (canned HTTP)", () => {
  it("raises an error event inside a stream as a typed error after the text so far", async () => {
    const { fetch } = cannedFetch([
      () =>
        sse(
          [
            chunk(JOB, "partial "),
            {
              error: {
                message: "the serving tab left",
                type: "server_error",
                param: null,
                code: "node_gone",
                request_id: "req_1",
              },
            },
          ],
          { "x-tabgrid-job-id": JOB },
        ),
    ]);
    const stream = await new Tabgrid({ baseURL: "http://c/v1", fetch }).chat.completions.create({
      ...params,
      stream: true,
    });
    let text = "";
    const err = await (async () => {
      try {
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      } catch (e) {
        return e;
      }
    })();
    expect(text).toBe("partial ");
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err).toMatchObject({ status: 502, code: "node_gone", requestId: "req_1" });
  });

  it.each([
    [503, "service_unavailable", "no_capacity", ServiceUnavailableError],
    [429, "rate_limit_error", "rate_limit_exceeded", RateLimitError],
  ] as const)("maps HTTP %d to its class with Retry-After", async (status, type, code, Cls) => {
    const { fetch } = cannedFetch([
      () =>
        new Response(JSON.stringify({ error: { message: "busy", type, param: null, code } }), {
          status,
          headers: { "retry-after": "3", "x-request-id": "req_2" },
        }),
    ]);
    const err = await new Tabgrid({ baseURL: "http://c/v1", fetch }).chat.completions
      .create(params)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Cls);
    expect(err).toMatchObject({ status, code, retryAfter: 3, requestId: "req_2" });
  });

  it("resumes after a stream that ends without [DONE], asking for the characters after", async () => {
    const { fetch, calls } = cannedFetch([
      () =>
        sse([chunk(JOB, "one "), chunk(JOB, "two ")], {
          "x-tabgrid-job-id": JOB,
          "x-tabgrid-job-token": "tgj_secret",
        }),
      () =>
        sse([
          chunk(JOB, "three"),
          chunk(JOB, null, "stop"),
          {
            ...chunk(JOB, null),
            choices: [],
            usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
          },
          "[DONE]",
        ]),
    ]);
    const client = new Tabgrid({ baseURL: "http://c/v1", fetch });
    const res = await client.chat.completions.create({ ...params, stream: true });
    let text = "";
    for await (const c of res) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe("one two three");
    expect(calls[1]?.url).toBe(`http://c/v1/jobs/${JOB}/stream?after=8&include_usage=true`);
    // Only the job's creator may resume it: the token from the first response goes back.
    expect(calls[1]?.headers["x-tabgrid-job-token"]).toBe("tgj_secret");
    expect(res.stats.resumes).toBe(1);
  });
});
