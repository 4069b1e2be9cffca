import { describe, expect, it } from "vitest";
import { looselyEnforced } from "./json-schema.js";

/**
 * Where the tab's grammar (xgrammar 0.1.27) holds less than the schema says: an answer outside
 * such a schema may be an honest model's, so the Region does not count it against its tab
 * (edge/region/structure-check.ts). Everything else the grammar holds whole.
 */
describe("looselyEnforced", () => {
  const city = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };

  it("finds each combination the grammar does not hold, where it is", () => {
    expect(looselyEnforced({ allOf: [city, city] })).toBe(
      "the schema: allOf of more than one schema",
    );
    expect(looselyEnforced({ oneOf: [city] })).toBe("the schema: oneOf (read as anyOf)");
    expect(
      looselyEnforced({
        type: "object",
        properties: { zip: { type: "string", pattern: "^\\d+$", maxLength: 5 } },
      }),
    ).toBe("properties.zip: pattern beside a length bound");
    expect(
      looselyEnforced({
        $defs: { c: city },
        properties: { a: { $ref: "#/$defs/c", type: "object" } },
      }),
    ).toBe('properties.a: "type" beside "$ref"');
    expect(looselyEnforced({ type: "array", items: { enum: ["a", "b"], minLength: 1 } })).toBe(
      'items: "minLength" beside "enum"',
    );
    expect(looselyEnforced({ anyOf: [city], required: ["city"] })).toBe(
      'the schema: "required" beside "anyOf"',
    );
  });

  it("holds plain schemas, annotations and definitions beside a keyword, and one-schema allOf", () => {
    expect(looselyEnforced(city)).toBeNull();
    expect(looselyEnforced({ allOf: [city] })).toBeNull();
    expect(
      looselyEnforced({ anyOf: [city, { type: "null" }], $defs: { c: city }, description: "x" }),
    ).toBeNull();
    expect(looselyEnforced({ const: "get_weather", title: "name" })).toBeNull();
    expect(looselyEnforced({ type: "string", pattern: "^a" })).toBeNull();
    expect(looselyEnforced(true)).toBeNull();
  });
});
