import WebSocket from "ws";
import { sseData } from "../../web/sdk/sse.js";
import { MODEL, TokenServer, now, parsePlan, planPrompt, type TokenPlan } from "./bench-tab.js";

/** What one client saw of one answer: when it asked, and when each token arrived. */
export interface Answer {
  ok: boolean;
  error?: string;
  sentAt: number;
  /** Arrival time of each token, in order (tokens are counted in the text, whatever the chunks). */
  tokenAt: number[];
  /** Pieces of text the tokens came in (SSE chunks, or job.delta frames): fewer when joined. */
  chunks: number;
  endAt: number;
}

function countTokens(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 32) n++;
  return n;
}

/** Through the coordinator: POST /v1/chat/completions with stream: true, read as SSE. */
export async function coordinatorAnswer(
  origin: string,
  index: number,
  plan: TokenPlan,
  timeoutMs: number,
): Promise<Answer> {
  const sentAt = now();
  const answer: Answer = { ok: false, sentAt, tokenAt: [], chunks: 0, endAt: sentAt };
  try {
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        max_tokens: plan.tokens,
        messages: [{ role: "user", content: planPrompt(index, plan) }],
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200 || !res.body) {
      answer.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return answer;
    }
    for await (const data of sseData(res.body)) {
      const at = now();
      if (data === "[DONE]") {
        answer.ok = answer.tokenAt.length === plan.tokens;
        if (!answer.ok) answer.error = `${answer.tokenAt.length} of ${plan.tokens} tokens`;
        break;
      }
      const json = JSON.parse(data) as {
        error?: { message?: string };
        choices?: Array<{ delta?: { content?: string } }>;
      };
      if (json.error) {
        answer.error = json.error.message ?? "error event";
        break;
      }
      const n = countTokens(json.choices?.[0]?.delta?.content ?? "");
      if (n > 0) answer.chunks++;
      for (let i = 0; i < n; i++) answer.tokenAt.push(at);
    }
  } catch (e) {
    answer.error = String(e);
  }
  answer.endAt = now();
  return answer;
}

/** Open a WebSocket and resolve once it is open (connection set-up is not part of an answer). */
export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/**
 * Over a WebSocket that carries the tab's own frames (direct to the tab, or through the raw
 * relay): send the prompt, count tokens in job.delta frames until job.done.
 */
export function socketAnswer(
  ws: WebSocket,
  index: number,
  plan: TokenPlan,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve) => {
    const sentAt = now();
    const answer: Answer = { ok: false, sentAt, tokenAt: [], chunks: 0, endAt: sentAt };
    const end = (error?: string) => {
      clearTimeout(timer);
      answer.endAt = now();
      answer.ok = !error && answer.tokenAt.length === plan.tokens;
      if (error) answer.error = error;
      ws.removeAllListeners("message");
      ws.close();
      resolve(answer);
    };
    const timer = setTimeout(() => end("timeout"), timeoutMs);
    ws.on("message", (data) => {
      const at = now();
      const msg = JSON.parse(data.toString()) as { type: string; text?: string };
      if (msg.type === "job.delta") {
        const n = countTokens(msg.text ?? "");
        if (n > 0) answer.chunks++;
        for (let i = 0; i < n; i++) answer.tokenAt.push(at);
      } else if (msg.type === "job.done") end();
    });
    ws.send(JSON.stringify({ prompt: planPrompt(index, plan) }));
  });
}

/**
 * One job through the raw `ws` relay (scripts/overhead/raw-relay.mjs), the baseline of
 * bench:overhead and bench:scale: the tab and the client each open a socket to it for the job, and
 * the tab answers with the same fixed-timing TokenServer the coordinator's tabs run.
 */
export async function relayAnswer(
  relayUrl: string,
  index: number,
  plan: TokenPlan,
  timeoutMs: number,
): Promise<Answer> {
  const id = `j${index}-${Math.random().toString(36).slice(2)}`;
  const tab = await openSocket(`${relayUrl}/tab/${id}`);
  tab.on("message", (data) => {
    const { prompt } = JSON.parse(data.toString()) as { prompt: string };
    const send = (msg: unknown) => tab.readyState === 1 && tab.send(JSON.stringify(msg));
    new TokenServer(parsePlan(prompt)!, {
      accept: () => send({ type: "job.accept" }),
      delta: (seq, offset, text) => send({ type: "job.delta", seq, offset, text }),
      done: (tokens) => send({ type: "job.done", tokens }),
    }).start();
  });
  const client: WebSocket = await openSocket(`${relayUrl}/client/${id}`);
  const answer = await socketAnswer(client, index, plan, timeoutMs);
  tab.close();
  return answer;
}
