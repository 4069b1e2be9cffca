import type { JsonSchema, SchemaProblem } from "./json-schema.js";

/**
 * Whether a parsed JSON answer follows a schema of the enforceable subset (json-schema.ts). The
 * coordinator asks it of every structured answer a tab writes (a tool envelope, a `response_format`
 * answer) before a client may see it: the tab's grammar should make every answer match, but tabs
 * are strangers' machines.
 *
 * Read as JSON Schema reads it, with the grammar's strict mode (docs/api.md): an object holds only
 * the properties its schema names unless `additionalProperties` allows others, and an array no
 * items past `prefixItems` unless `items` allows them — except inside `allOf`, whose members each
 * see only part of an object. Not checked: `format` (an annotation in JSON Schema 2020-12; each
 * format is a regular expression of the grammar's own, and a stricter reading would refuse honest
 * answers), nor `pattern`: it is the client's own regular expression, and JavaScript's
 * backtracking engine can spend exponential time on one (`^(a+)+$` against a long run of "a"s
 * and one other character), in a Worker isolate that other requests share; the grammar enforces
 * it on the tab. String lengths are counted as leniently as the grammar may count them (a character
 * escaped as a surrogate pair is two of its units, one character): `minLength` by UTF-16 units,
 * `maxLength` by code points.
 *
 * A problem names where it is (OpenAI's `param` notation, relative to the answer) and what the
 * schema wanted, never the tab's own text: a tab could write anything there (an unnamed property
 * shows as `.*`). Work is bounded (MAX_STEPS, MAX_DEPTH) whatever the schema and the answer.
 */
export function schemaMismatch(value: unknown, schema: JsonSchema): SchemaProblem | null {
  const walk: Walk = { root: schema, steps: 0 };
  return strip(check(value, schema, { path: "", depth: 0, inAllOf: false }, walk));
}

/** Most schema nodes one check visits: far above any real answer, and a bound on CPU. */
const MAX_STEPS = 100_000;
/** Deepest nesting checked (answers and recursive `$ref`s alike). */
const MAX_DEPTH = 128;

interface Walk {
  root: JsonSchema;
  steps: number;
}

/** A problem, and for anyOf's choice of the branch to report: the allowed values it missed. */
interface Problem extends SchemaProblem {
  allowed?: unknown[];
  /** The branch's object had every property it requires (it is the shape the answer meant). */
  shaped?: boolean;
}

/** Where a check stands: the place in the answer, how deep, and whether inside an allOf member. */
interface At {
  path: string;
  depth: number;
  inAllOf: boolean;
}

/** One level down, at `path` (the same place, for a subschema of this one). */
function below(at: At, path = at.path, inAllOf = false): At {
  return { path, depth: at.depth + 1, inAllOf };
}

function strip(p: Problem | null): SchemaProblem | null {
  return p && { path: p.path, message: p.message };
}

function check(value: unknown, schema: unknown, at: At, w: Walk): Problem | null {
  const { path } = at;
  if (++w.steps > MAX_STEPS) return { path, message: "the answer is too costly to check" };
  if (at.depth > MAX_DEPTH) return { path, message: `nested deeper than ${MAX_DEPTH} levels` };
  if (schema === true || schema === undefined) return null;
  if (schema === false) return { path, message: "no value is allowed here" };
  // The request was checked to hold only schemas (json-schema.ts `unenforceable`).
  if (!schema || typeof schema !== "object") return null;
  const s = schema as JsonSchema;
  return (
    refProblem(value, s, at, w) ??
    valueProblem(value, s, path) ??
    combinedProblem(value, s, at, w) ??
    typedProblem(value, s, at, w)
  );
}

function refProblem(value: unknown, s: JsonSchema, at: At, w: Walk): Problem | null {
  if (typeof s.$ref !== "string") return null;
  const target = resolveRef(w.root, s.$ref);
  if (target === undefined) {
    return { path: at.path, message: `the schema's ${s.$ref} names nothing` };
  }
  return check(value, target, below(at), w);
}

/** `#`, `#/$defs/<name>` or `#/definitions/<name>` (the only references the subset allows). */
function resolveRef(root: JsonSchema, ref: string): unknown {
  if (ref === "#") return root;
  const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
  const defs = m ? root[m[1]!] : undefined;
  if (!m || !defs || typeof defs !== "object") return undefined;
  // The name as written (as the grammar reads it), else as a JSON Pointer escapes it.
  for (const name of [m[2]!, pointerName(m[2]!)]) {
    if (name !== null && Object.hasOwn(defs, name)) return (defs as Record<string, unknown>)[name];
  }
  return undefined;
}

function pointerName(part: string): string | null {
  try {
    return decodeURIComponent(part).replaceAll("~1", "/").replaceAll("~0", "~");
  } catch {
    return null;
  }
}

function valueProblem(value: unknown, s: JsonSchema, path: string): Problem | null {
  if (Object.hasOwn(s, "const") && !sameJson(value, s.const)) {
    return { path, message: `must be ${show(s.const)}`, allowed: [s.const] };
  }
  if (Array.isArray(s.enum) && !s.enum.some((v) => sameJson(value, v))) {
    return { path, message: `must be one of ${s.enum.map(show).join(", ")}`, allowed: s.enum };
  }
  return null;
}

function combinedProblem(value: unknown, s: JsonSchema, at: At, w: Walk): Problem | null {
  if (Array.isArray(s.allOf)) {
    for (const sub of s.allOf) {
      const p = check(value, sub, below(at, at.path, true), w);
      if (p) return p;
    }
  }
  for (const key of ["anyOf", "oneOf"] as const) {
    const list = s[key];
    if (!Array.isArray(list)) continue;
    const problems: Problem[] = [];
    let matched = 0;
    for (const sub of list) {
      const p = check(value, sub, below(at, at.path, at.inAllOf), w);
      if (p) problems.push(p);
      else if (++matched > 1 && key === "oneOf") break;
    }
    if (key === "oneOf" && matched > 1) {
      return { path: at.path, message: "matches more than one of the schema's oneOf branches" };
    }
    if (!matched) return closest(problems, at.path);
  }
  return null;
}

/**
 * The problem to report when no branch of anyOf/oneOf matched: the one of a branch whose required
 * properties the answer has (the shape it meant), then the deepest; several branches each wanting
 * other values at the same place (a tool's name) are reported together.
 */
function closest(problems: Problem[], path: string): Problem {
  const rank = (p: Problem) => (p.shaped ? MAX_DEPTH + 1 : 0) + depthOf(p.path);
  const best = Math.max(...problems.map(rank));
  const top = problems.filter((p) => rank(p) === best);
  const first = top[0];
  if (!first) return { path, message: "matches none of the allowed shapes" };
  if (top.length > 1 && top.every((p) => p.allowed && p.path === first.path)) {
    const allowed = top.flatMap((p) => p.allowed ?? []);
    return { ...first, message: `must be one of ${allowed.map(show).join(", ")}`, allowed };
  }
  return first;
}

/** How many places deep a path is (`tool_calls[0].name`: 3). */
function depthOf(path: string): number {
  return path ? path.split(/\.|\[/).length : 0;
}

function typedProblem(value: unknown, s: JsonSchema, at: At, w: Walk): Problem | null {
  const { path } = at;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    const kind = jsonType(value);
    if (!types.includes(kind) && !(kind === "integer" && types.includes("number"))) {
      return { path, message: `must be of type ${types.join(" or ")}` };
    }
  }
  if (typeof value === "number") return numberProblem(value, s, path);
  if (typeof value === "string") return stringProblem(value, s, path);
  if (Array.isArray(value)) return arrayProblem(value, s, at, w);
  if (value && typeof value === "object") {
    return objectProblem(value as Record<string, unknown>, s, at, w);
  }
  return null;
}

function numberProblem(n: number, s: JsonSchema, path: string): Problem | null {
  const bound = (key: string, ok: (limit: number) => boolean, words: string) =>
    typeof s[key] === "number" && !ok(s[key]) ? { path, message: `${words} ${s[key]}` } : null;
  return (
    bound("minimum", (m) => n >= m, "must be at least") ??
    bound("maximum", (m) => n <= m, "must be at most") ??
    bound("exclusiveMinimum", (m) => n > m, "must be more than") ??
    bound("exclusiveMaximum", (m) => n < m, "must be less than")
  );
}

function stringProblem(text: string, s: JsonSchema, path: string): Problem | null {
  if (typeof s.minLength === "number" && text.length < s.minLength) {
    return { path, message: `must have at least ${s.minLength} characters` };
  }
  if (typeof s.maxLength === "number" && codePoints(text) > s.maxLength) {
    return { path, message: `must have at most ${s.maxLength} characters` };
  }
  return null;
}

function arrayProblem(items: unknown[], s: JsonSchema, at: At, w: Walk): Problem | null {
  const { path } = at;
  if (typeof s.minItems === "number" && items.length < s.minItems) {
    return { path, message: `must have at least ${s.minItems} items` };
  }
  if (typeof s.maxItems === "number" && items.length > s.maxItems) {
    return { path, message: `must have at most ${s.maxItems} items` };
  }
  const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
  // Strict mode: an array schema allows no items past the prefix unless `items` allows them.
  const rest = s.items ?? !(hasType(s, "array") || prefix.length);
  for (const [i, item] of items.entries()) {
    const p = check(item, i < prefix.length ? prefix[i] : rest, below(at, `${path}[${i}]`), w);
    if (p) return p;
  }
  return null;
}

function objectProblem(
  obj: Record<string, unknown>,
  s: JsonSchema,
  at: At,
  w: Walk,
): Problem | null {
  const { path } = at;
  const of = (key: string) => (path ? `${path}.${key}` : key);
  const props = (s.properties ?? {}) as Record<string, unknown>;
  const keys = Object.keys(obj);
  const required = Array.isArray(s.required) ? (s.required as string[]) : [];
  const missing = required.find((k) => !Object.hasOwn(obj, k));
  if (missing !== undefined) return { path: of(missing), message: "is required" };
  const problem = ((): Problem | null => {
    if (typeof s.minProperties === "number" && keys.length < s.minProperties) {
      return { path, message: `must have at least ${s.minProperties} properties` };
    }
    if (typeof s.maxProperties === "number" && keys.length > s.maxProperties) {
      return { path, message: `must have at most ${s.maxProperties} properties` };
    }
    // Strict mode, as the grammar: none beyond `properties` unless `additionalProperties` says so
    // (inside allOf each member names only some of them, so there JSON Schema's default holds).
    const strict = (hasType(s, "object") || s.properties !== undefined) && !at.inAllOf && !s.allOf;
    const extra = s.additionalProperties ?? !strict;
    for (const key of keys) {
      const named = Object.hasOwn(props, key);
      if (!named && extra === false) {
        return { path, message: "holds a property the schema does not name" };
      }
      // A property the schema does not name shows as `.*`: its name is the tab's own text.
      const p = check(obj[key], named ? props[key] : extra, below(at, of(named ? key : "*")), w);
      if (p) return p;
    }
    return null;
  })();
  return problem && { ...problem, shaped: required.length > 0 };
}

function hasType(s: JsonSchema, type: string): boolean {
  return s.type === type || (Array.isArray(s.type) && s.type.includes(type));
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Equal as JSON values (object key order aside). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!a || !b || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((v, i) => sameJson(v, bs[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao);
  return (
    keys.length === Object.keys(bo).length &&
    keys.every((k) => Object.hasOwn(bo, k) && sameJson(ao[k], bo[k]))
  );
}

/** A value of the schema (the client's own words), shortened for a message. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
