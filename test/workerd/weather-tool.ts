import type OpenAI from "openai";
/**
 * The tool the workerd tool-calling tests offer: one required string argument, no others allowed
 * (a strict schema, so the tab's grammar admits exactly `{"city": "…"}`).
 */
export const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

/** The `response_format` the workerd JSON tests ask for: an object with one string, `city`. */
export const cityFormat = {
  type: "json_schema" as const,
  json_schema: { name: "city", strict: true, schema: weatherTool.function.parameters },
};

/** A tool call to a tool no request offers: what a lying tab writes in tests. */
export const DELETE_ACCOUNT =
  '{"tool_calls":[{"name":"delete_account","arguments":{"user":"everyone"}}]}';
/** The call an honest tab makes to `weatherTool`. */
export const PARIS = '{"name":"get_weather","arguments":{"city":"Paris"}}';

/**
 * Ask `model` for the weather in Paris with `weatherTool` offered and 4,096 tokens allowed (and
 * `extra`); settles either way, as the status and the choice or the error's code.
 */
export function askWeather(
  client: OpenAI,
  model: string,
  extra: object = {},
): Promise<{ status?: number; choice?: OpenAI.ChatCompletion.Choice; code?: string }> {
  return client.chat.completions
    .create({
      model,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool],
      max_tokens: 4096,
      ...extra,
    })
    .then(
      (r) => ({ status: 200, choice: r.choices[0] }),
      (e: { status?: number; code?: string }) => ({ status: e.status, code: e.code }),
    );
}
