import { z } from "zod";

/**
 * Text a tab sends that others read (its GPU adapter and software name in GET /v1/nodes): any
 * printable character, none of the C0/C1 control characters (newline, NUL, escape…), DEL, the
 * line and paragraph separators, or Unicode's bidirectional formatting characters (U+202E, which
 * shows text reversed, and its kin U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069). What a
 * browser reports for its adapter has none; the tab removes any before it sends (`toPrintable`),
 * so only a tab that means it is refused.
 */
const UNPRINTABLE = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]/;
const EVERY_UNPRINTABLE = new RegExp(UNPRINTABLE.source, "g");

/** A string of at most `max` UTF-16 units without control or bidirectional-formatting characters. */
export function printableText(max: number) {
  return z
    .string()
    .max(max)
    .refine((s) => !UNPRINTABLE.test(s), {
      message: "control or bidirectional-formatting character",
    });
}

/** `text` without the characters `printableText` refuses. */
export function toPrintable(text: string): string {
  return text.replace(EVERY_UNPRINTABLE, "");
}
