import { createServer, type IncomingMessage, type Server } from "node:http";

/**
 * A stand-in for a cloud OpenAI-compatible upstream (the real one is on the internet, which tests
 * cannot reach). Answers /v1/chat/completions with a fixed text, streamed as SSE or as JSON, and
 * records what it was sent so tests can check the request was forwarded unchanged.
 */
export interface FakeUpstream {
  url: string;
  requests: Array<{
    path: string;
    authorization: string | undefined;
    body: Record<string, unknown>;
  }>;
  close(): Promise<void>;
}

export const UPSTREAM_TEXT = ["Answered ", "by the ", "cloud."];

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return JSON.parse(text) as Record<string, unknown>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const requests: FakeUpstream["requests"] = [];
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    requests.push({ path: req.url ?? "", authorization: req.headers.authorization, body });
    const base = { id: "chatcmpl-upstream", created: 1, model: String(body.model) };
    if (body.stream) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const piece of UPSTREAM_TEXT) {
        const chunk = {
          ...base,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta: { content: piece }, finish_reason: null }],
        };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      }
      const last = {
        ...base,
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
      };
      res.end(`data: ${JSON.stringify(last)}\n\ndata: [DONE]\n\n`);
    } else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: UPSTREAM_TEXT.join("") },
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        }),
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
