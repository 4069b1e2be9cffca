import { execFileSync } from "node:child_process";

/**
 * The commit of a coordinator checkout, and whether its `edge/` or `shared/` sources are edited,
 * so a benchmark's table names the code it measured.
 */
export function describeSource(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", root, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    const edited = git("status", "--porcelain", "--", "edge", "shared")
      ? ", edge/shared edited"
      : "";
    return `commit ${git("rev-parse", "--short", "HEAD")}${edited}`;
  } catch {
    return "not a git checkout";
  }
}
