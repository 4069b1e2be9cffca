/**
 * The JSON Schema subset Tabgrid can enforce in a tab. WebLLM compiles a schema into a grammar with
 * xgrammar (strict mode: properties and items not in the schema are not allowed) and masks every
 * token that would leave it, so the answer always parses and matches. A keyword outside this subset
 * would be silently ignored by that compiler, so the coordinator refuses it instead, naming where.
 * Every answer is checked against the same schema before a client sees it (json-schema-match.ts).
 */
export type JsonSchema = { [key: string]: unknown };

/** Keywords the grammar enforces. */
const ENFORCED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "allOf",
  "$ref",
  "$defs",
  "definitions",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minProperties",
  "maxProperties",
]);

/** Keywords that only annotate: they do not change what is valid, so ignoring them drops nothing. */
const ANNOTATIONS = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "strict",
]);

const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

/** Keywords whose value is a map of names to subschemas. */
const SCHEMA_MAPS = new Set(["properties", "$defs", "definitions"]);
/** Keywords whose value is a list of subschemas. */
const SCHEMA_LISTS = new Set(["anyOf", "oneOf", "allOf", "prefixItems"]);

export interface SchemaProblem {
  /** Path inside the schema, in OpenAI's `param` notation relative to the schema. */
  path: string;
  message: string;
}

/** The first keyword Tabgrid cannot enforce, or null when the whole schema is enforceable. */
export function unenforceable(schema: unknown, path = ""): SchemaProblem | null {
  if (typeof schema === "boolean") return null;
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    return { path, message: "a JSON schema must be an object" };
  }
  for (const [key, value] of Object.entries(schema)) {
    const here = path ? `${path}.${key}` : key;
    if (ANNOTATIONS.has(key)) continue;
    if (!ENFORCED.has(key)) {
      return {
        path: here,
        message: `the JSON Schema keyword "${key}" cannot be enforced by grammar-constrained decoding`,
      };
    }
    if (key === "type") {
      const types = Array.isArray(value) ? value : [value];
      const bad = types.find((t) => typeof t !== "string" || !TYPES.has(t));
      if (bad !== undefined) return { path: here, message: `unknown type ${JSON.stringify(bad)}` };
    } else if (key === "$ref") {
      if (typeof value !== "string" || !/^#(\/(\$defs|definitions)\/[^/]+)?$/.test(value)) {
        return { path: here, message: "only local references (#, #/$defs/…) are supported" };
      }
    } else if (SCHEMA_MAPS.has(key)) {
      if (!value || typeof value !== "object" || Array.isArray(value)) {
        return { path: here, message: `"${key}" must map names to schemas` };
      }
      for (const [name, sub] of Object.entries(value)) {
        const p = unenforceable(sub, `${here}.${name}`);
        if (p) return p;
      }
    } else if (SCHEMA_LISTS.has(key)) {
      if (!Array.isArray(value) || !value.length) {
        return { path: here, message: `"${key}" must be a non-empty list of schemas` };
      }
      for (const [i, sub] of value.entries()) {
        const p = unenforceable(sub, `${here}[${i}]`);
        if (p) return p;
      }
    } else if (key === "items" || key === "additionalProperties") {
      const p = unenforceable(value, here);
      if (p) return p;
    } else if (key === "required") {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        return { path: here, message: '"required" must be a list of property names' };
      }
    } else if (key === "enum") {
      if (!Array.isArray(value) || !value.length) {
        return { path: here, message: '"enum" must be a non-empty list' };
      }
    }
  }
  return null;
}

/** JSON mode without a schema: any JSON object, as OpenAI's `json_object` promises. */
export const ANY_OBJECT_SCHEMA: JsonSchema = { type: "object", additionalProperties: true };

/** Keywords beside which xgrammar drops the rest (docs/api.md, "Structured output: how"). */
const ALONE = ["$ref", "const", "enum", "anyOf", "oneOf"] as const;
/** Keys that sit beside any keyword without constraining: annotations and definitions. */
const BESIDE_ANY = new Set([...ANNOTATIONS, "$defs", "definitions"]);

/**
 * Where the tab's grammar is looser than the schema, or null when it holds the whole schema, so
 * that an honest tab's answer always matches it. With WebLLM 0.2.86 (xgrammar 0.1.27), measured:
 * `allOf` of more than one schema is not enforced, keywords beside `$ref`, `const`, `enum`,
 * `anyOf` or `oneOf` are ignored, `oneOf` is read as `anyOf`, and `pattern` drops
 * `minLength`/`maxLength`. An answer outside such a schema may be an honest model's, so it is
 * refused (json-schema-match.ts) but not held against its tab (edge/region/structure-check.ts).
 */
export function looselyEnforced(schema: unknown, path = ""): string | null {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return null;
  const s = schema as JsonSchema;
  const at = (what: string) => `${path || "the schema"}: ${what}`;
  if (Array.isArray(s.allOf) && s.allOf.length > 1) return at("allOf of more than one schema");
  if ("oneOf" in s) return at("oneOf (read as anyOf)");
  if ("pattern" in s && ("minLength" in s || "maxLength" in s))
    return at("pattern beside a length bound");
  const alone = ALONE.find((k) => k in s);
  if (alone) {
    const beside = Object.keys(s).find((k) => k !== alone && !BESIDE_ANY.has(k));
    if (beside) return at(`"${beside}" beside "${alone}"`);
  }
  for (const [key, value] of Object.entries(s)) {
    const here = path ? `${path}.${key}` : key;
    if (SCHEMA_MAPS.has(key) && value && typeof value === "object" && !Array.isArray(value)) {
      for (const [name, sub] of Object.entries(value)) {
        const p = looselyEnforced(sub, `${here}.${name}`);
        if (p) return p;
      }
    } else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) {
      for (const [i, sub] of value.entries()) {
        const p = looselyEnforced(sub, `${here}[${i}]`);
        if (p) return p;
      }
    } else if (key === "items" || key === "additionalProperties") {
      const p = looselyEnforced(value, here);
      if (p) return p;
    }
  }
  return null;
}
