import { sseData } from "../../web/sdk/sse.js";

/** An SSE body's `data:` payloads (the raw text after "data: "), read with the SDK's reader. */
export async function readSse(res: Response): Promise<string[]> {
  const out: string[] = [];
  if (!res.body) return out;
  for await (const data of sseData(res.body)) out.push(data);
  return out;
}
