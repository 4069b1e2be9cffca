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
