/** Split an SSE body into its `data:` payloads (the raw text after "data: "). */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.trim())
    .map((block) => {
      if (!block.startsWith("data: ")) throw new Error(`not an SSE data block: ${block}`);
      return block.slice("data: ".length);
    });
}
