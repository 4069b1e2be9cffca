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
