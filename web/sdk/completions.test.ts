import { describe, expect, it } from "vitest";
import { cannedFetch, sse } from "../../test/support/canned-fetch.js";
import { Tabgrid } from "./client.js";
import { APIUserAbortError, BadRequestError, InternalServerError } from "./errors.js";

/** The plain-text `completions.create`: same stream, resume and error code as chat, other shape. */
const JOB = "job_wnam_0123456789abcdef0123456789abcdef";
const USAGE = { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 };

function text(piece: string, finish: string | null = null) {
  return {
    id: `cmpl-${JOB}`,
    object: "text_completion",
    created: 1,
    model: "m",
    choices: [{ index: 0, text: piece, finish_reason: finish, logprobs: null }],
  };
}
const usageChunk = { ...text(""), choices: [], usage: USAGE };

async function drain<T>(it: AsyncIterable<T>): Promise<{ chunks: T[]; error: unknown }> {
  const chunks: T[] = [];
  try {
    for await (const c of it) chunks.push(c);
    return { chunks, error: null };
  } catch (error) {
    return { chunks, error };
  }
}

describe("completions.create (plain text, canned HTTP)", () => {
  it("posts to /completions and returns the whole text_completion", async () => {
    const body = { ...text("Once upon a time", "stop"), usage: USAGE };
    const { fetch, calls } = cannedFetch([() => Response.json(body)]);
    const client = new Tabgrid({ baseURL: "http://c/v1", fetch });
    const res = await client.completions.create({ model: "m", prompt: "Tell me", max_tokens: 5 });
    expect(calls[0]).toMatchObject({
      method: "POST",
      url: "http://c/v1/completions",
      body: { model: "m", prompt: "Tell me", max_tokens: 5, stream: false },
    });
    expect(res).toMatchObject({
      object: "text_completion",
      choices: [{ index: 0, text: "Once upon a time", finish_reason: "stop" }],
      usage: USAGE,
    });
  });

  it("streams text_completion chunks and resumes a stream that ended without [DONE]", async () => {
    const { fetch, calls } = cannedFetch([
      () => sse([text("one "), text("two ")], { "x-tabgrid-job-id": JOB }),
      () => sse([text("three"), text("", "length"), usageChunk, "[DONE]"]),
    ]);
    const client = new Tabgrid({ baseURL: "http://c/v1", fetch });
    const stream = await client.completions.create({
      model: "m",
      prompt: "count",
      stream: true,
      stream_options: { include_usage: true },
    });
    const { chunks, error } = await drain(stream);
    expect(error).toBeNull();
    expect(calls[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(calls[1]?.url).toBe(`http://c/v1/jobs/${JOB}/stream?after=8&include_usage=true`);
    expect(stream.stats.resumes).toBe(1);
    // No role chunk as in chat: text pieces (merged as they arrive), the finish, then usage.
    expect(chunks.map((c) => c.choices[0]?.text ?? "").join("")).toBe("one two three");
    expect(chunks[0]?.choices[0]?.text).toBe("one ");
    expect(chunks.every((c) => c.object === "text_completion" && c.id === `cmpl-${JOB}`)).toBe(
      true,
    );
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("length");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: USAGE });
  });

  it("reads a non-streaming answer cut off after the headers back from the job", async () => {
    const cut = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"id":"cmpl-'));
        c.error(new TypeError("network connection was lost"));
      },
    });
    const { fetch, calls } = cannedFetch([
      () => new Response(cut, { headers: { "x-tabgrid-job-id": JOB } }),
      () => sse([text("whole "), text("answer", "stop"), usageChunk, "[DONE]"]),
    ]);
    const res = await new Tabgrid({ baseURL: "http://c/v1", fetch }).completions.create({
      model: "m",
      prompt: "p",
    });
    expect(calls[1]?.url).toBe(`http://c/v1/jobs/${JOB}/stream?after=0&include_usage=true`);
    expect(res).toMatchObject({
      id: `cmpl-${JOB}`,
      object: "text_completion",
      choices: [{ index: 0, text: "whole answer", finish_reason: "stop" }],
      usage: USAGE,
    });
  });

  it("stops on AbortSignal with APIUserAbortError", async () => {
    // A stream that sends one piece and then stays open, as a long answer would.
    const open = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(`data: ${JSON.stringify(text("first "))}\n\n`));
      },
    });
    const { fetch } = cannedFetch([
      () => new Response(open, { headers: { "x-tabgrid-job-id": JOB } }),
    ]);
    const controller = new AbortController();
    const stream = await new Tabgrid({ baseURL: "http://c/v1", fetch }).completions.create(
      { model: "m", prompt: "p", stream: true },
      { signal: controller.signal },
    );
    let got = "";
    const { error } = await drain(
      (async function* () {
        for await (const c of stream) {
          got += c.choices[0]?.text ?? "";
          controller.abort();
          yield c;
        }
      })(),
    );
    expect(got).toBe("first ");
    expect(error).toBeInstanceOf(APIUserAbortError);
  });

  it("raises typed errors: HTTP 400 with param, and an error event inside the stream", async () => {
    const { fetch } = cannedFetch([
      () =>
        Response.json(
          {
            error: {
              message: "echo is not supported",
              type: "invalid_request_error",
              param: "echo",
              code: "unsupported_value",
            },
          },
          { status: 400, headers: { "x-request-id": "req_3" } },
        ),
      () =>
        sse(
          [
            text("partial "),
            {
              error: {
                message: "the serving tab left",
                type: "server_error",
                param: null,
                code: "node_gone",
              },
            },
          ],
          { "x-tabgrid-job-id": JOB },
        ),
    ]);
    const client = new Tabgrid({ baseURL: "http://c/v1", fetch });
    const bad = await client.completions.create({ model: "m", prompt: "p" }).catch((e) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect(bad).toMatchObject({ status: 400, param: "echo", requestId: "req_3" });
    const { chunks, error } = await drain(
      await client.completions.create({ model: "m", prompt: "p", stream: true }),
    );
    expect(chunks.map((c) => c.choices[0]?.text).join("")).toBe("partial ");
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 502, code: "node_gone" });
  });
});
