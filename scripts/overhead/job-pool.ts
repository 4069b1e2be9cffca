import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Answer } from "./clients.js";

/**
 * `total` jobs, `concurrent` at a time (a new one starts as one ends); `job` runs one. Shared by
 * bench:overhead and bench:scale.
 */
export async function runPool(
  concurrent: number,
  total: number,
  job: () => Promise<Answer>,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      answers.push(await job());
    }
  };
  await Promise.all(Array.from({ length: concurrent }, worker));
  return answers;
}

/** Token frames the clients received, over all answers. */
export function framesOf(answers: Answer[]): number {
  return answers.reduce((n, a) => n + a.tokenAt.length, 0);
}

/** "complete/all" for a table cell. */
export function okCount(answers: Answer[]): string {
  return `${answers.filter((a) => a.ok).length}/${answers.length}`;
}

/** The raw relay in its own process (scripts/overhead/raw-relay.mjs), the benches' baseline. */
export async function startRawRelay(): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = spawn(process.execPath, [resolve("scripts/overhead/raw-relay.mjs")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((res, rej) => {
    child.once("error", rej);
    createInterface({ input: child.stdout! }).once("line", res);
  });
  const { port } = JSON.parse(line) as { port: number };
  return { url: `ws://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}
