import type {
  ChatRequestMessage,
  ResponseFormat as RequestedFormat,
  Tool,
  ToolCall,
  ToolChoice,
} from "../../shared/openai/chat.js";
import { ANY_OBJECT_SCHEMA, type JsonSchema } from "../../shared/openai/json-schema.js";
import type { ChatMessage } from "../../shared/protocol/job.js";

/**
 * Tool calling on every chat model, done by the coordinator. The tab is asked for one JSON object
 * under grammar-constrained decoding (the same mechanism as `response_format`), shaped as either
 *   {"content": "<answer to the user>"}        (only with tool_choice "auto")
 *   {"tool_calls": [{"name": "<tool>", "arguments": {…}}]}
 * with each tool's `parameters` schema enforced on its arguments. The coordinator turns that into
 * OpenAI's `message.tool_calls` (ids, index, arguments as a JSON string) and finish_reason
 * "tool_calls". Why not WebLLM's native tools: it only exists for a few Hermes models and forbids a
 * system prompt of the caller's own; this way every chat model works, and the tab needs nothing but
 * JSON-schema decoding. The model learns the tools from a system message the coordinator adds, and
 * earlier tool calls and results are written into the conversation in the same JSON shape.
 */

/** How the tab's answer is shaped and how the coordinator reads it. */
export type AnswerMode =
  | { kind: "text" }
  /** The tab answers JSON (response_format): passed through as content. */
  | { kind: "json" }
  /** The tab answers the tool envelope; `contentIsJson`: content is a JSON value, not a string. */
  | { kind: "tools"; contentIsJson: boolean };

/** A JSON schema the answer must follow, and the answer mode; null schema means free text. */
export interface AnswerPlan {
  mode: AnswerMode;
  schema: JsonSchema | null;
  /** Appended to (or made into) the system message, telling the model what to produce. */
  instructions: string | null;
}

/** The schema `response_format` asks for, or null for text. */
function formatSchema(format: RequestedFormat | null | undefined): JsonSchema | null {
  if (!format || format.type === "text") return null;
  if (format.type === "json_object") return ANY_OBJECT_SCHEMA;
  return (format.json_schema.schema as JsonSchema | null | undefined) ?? ANY_OBJECT_SCHEMA;
}

/**
 * Move a subschema's `$defs`/`definitions` into the root's `$defs` under a prefix and rewrite its
 * local `$ref`s, so schemas written for the root keep resolving once nested in the envelope.
 */
function embed(schema: JsonSchema, prefix: string, defs: Record<string, unknown>): JsonSchema {
  const own = { ...(schema.$defs as object), ...(schema.definitions as object) } as Record<
    string,
    unknown
  >;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (!node || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === "$defs" || k === "definitions") continue;
      if (k === "$ref" && typeof v === "string") {
        out[k] =
          v === "#"
            ? `#/$defs/${prefix}`
            : v.replace(/^#\/(\$defs|definitions)\//, `#/$defs/${prefix}_`);
      } else out[k] = rewrite(v);
    }
    return out;
  };
  const body = rewrite(schema) as JsonSchema;
  for (const [name, sub] of Object.entries(own)) defs[`${prefix}_${name}`] = rewrite(sub);
  if (JSON.stringify(body).includes(`"#/$defs/${prefix}"`)) defs[prefix] = body;
  return body;
}

function callSchema(tool: Tool, i: number, defs: Record<string, unknown>): JsonSchema {
  const params = (tool.function.parameters as JsonSchema | null | undefined) ?? ANY_OBJECT_SCHEMA;
  return {
    type: "object",
    properties: {
      name: { const: tool.function.name },
      arguments: embed(params, `tool${i}`, defs),
    },
    required: ["name", "arguments"],
    additionalProperties: false,
  };
}

/** Decide what the tab must produce for a chat request. */
export function planAnswer(req: {
  tools?: Tool[] | null;
  tool_choice?: ToolChoice | null;
  parallel_tool_calls?: boolean | null;
  response_format?: RequestedFormat | null;
}): AnswerPlan {
  const content = formatSchema(req.response_format);
  const choice = req.tool_choice ?? "auto";
  const tools = req.tools ?? [];
  if (!tools.length || choice === "none") {
    return content
      ? { mode: { kind: "json" }, schema: content, instructions: jsonInstructions(content) }
      : { mode: { kind: "text" }, schema: null, instructions: null };
  }
  const offered =
    typeof choice === "object"
      ? tools.filter((t) => t.function.name === choice.function.name)
      : tools;
  const defs: Record<string, unknown> = {};
  const items = offered.map((t, i) => callSchema(t, i, defs));
  const single = typeof choice === "object" || req.parallel_tool_calls === false;
  const calls: JsonSchema = {
    type: "object",
    properties: {
      tool_calls: {
        type: "array",
        items: items.length === 1 ? items[0] : { anyOf: items },
        minItems: 1,
        ...(single ? { maxItems: 1 } : {}),
      },
    },
    required: ["tool_calls"],
    additionalProperties: false,
  };
  const answer: JsonSchema = {
    type: "object",
    properties: { content: content ? embed(content, "content", defs) : { type: "string" } },
    required: ["content"],
    additionalProperties: false,
  };
  const root: JsonSchema = choice === "auto" ? { anyOf: [answer, calls] } : calls;
  if (Object.keys(defs).length) root.$defs = defs;
  return {
    mode: { kind: "tools", contentIsJson: content !== null },
    schema: root,
    instructions: toolInstructions(offered, choice, single, content),
  };
}

function jsonInstructions(schema: JsonSchema): string {
  return schema === ANY_OBJECT_SCHEMA
    ? "Answer with a JSON object only."
    : `Answer with JSON only, following this JSON schema:\n${JSON.stringify(schema)}`;
}

function toolInstructions(
  tools: Tool[],
  choice: ToolChoice,
  single: boolean,
  content: JsonSchema | null,
): string {
  const list = tools.map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    parameters: t.function.parameters ?? ANY_OBJECT_SCHEMA,
  }));
  const lines = [
    `You can call these tools:\n${JSON.stringify(list)}`,
    "Answer with one JSON object only.",
    `To call ${single ? "a tool" : "tools"}: {"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}${single ? "" : ", …"}]}.`,
  ];
  if (choice === "auto") {
    lines.push(
      content
        ? `To answer the user directly: {"content": <JSON following ${JSON.stringify(content)}>}.`
        : 'To answer the user directly: {"content": "<your answer>"}.',
      "Call a tool when it helps; answer directly when you can.",
    );
  } else lines.push("You must call a tool now.");
  lines.push("Tool results come back as messages starting with 'Tool result'.");
  return lines.join("\n");
}

/**
 * The conversation as the tab sees it: `developer` is `system`; the plan's instructions join the
 * system message (WebLLM allows one, first); assistant tool calls and tool results are written in
 * the envelope's JSON and as user messages, which every chat template can render.
 */
export function jobMessages(messages: ChatRequestMessage[], plan: AnswerPlan): ChatMessage[] {
  const callNames = new Map<string, string>();
  const out: ChatMessage[] = [];
  const system: string[] = [];
  for (const m of messages) {
    switch (m.role) {
      case "system":
      case "developer":
        if (!out.length) system.push(m.content);
        else out.push({ role: "user", content: `(system) ${m.content}` });
        break;
      case "user":
        out.push({ role: "user", content: m.content, ...(m.name ? { name: m.name } : {}) });
        break;
      case "assistant": {
        const calls = m.tool_calls ?? [];
        for (const c of calls) callNames.set(c.id, c.function.name);
        let content = m.content ?? "";
        if (calls.length) {
          content = JSON.stringify({
            tool_calls: calls.map((c) => ({ name: c.function.name, arguments: parseArgs(c) })),
          });
        } else if (plan.mode.kind === "tools") {
          content = JSON.stringify({ content: content });
        }
        out.push({ role: "assistant", content, ...(m.name ? { name: m.name } : {}) });
        break;
      }
      case "tool": {
        const name = callNames.get(m.tool_call_id);
        out.push({
          role: "user",
          content: `Tool result (call ${m.tool_call_id}${name ? `, ${name}` : ""}):\n${m.content}`,
        });
        break;
      }
    }
  }
  if (plan.instructions) system.push(plan.instructions);
  if (system.length) out.unshift({ role: "system", content: system.join("\n\n") });
  return out;
}

function parseArgs(call: ToolCall): unknown {
  try {
    return JSON.parse(call.function.arguments);
  } catch {
    return call.function.arguments;
  }
}
