import { describe, expect, it } from "vitest";
import { ApiError } from "../http/api-error.js";
import type { JobRequest } from "../region/job-request.js";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import { openJob } from "./open-job.js";

/**
 * Every job the Worker opens is one a tab can read (the protocol's JobSpecSchema), checked before
 * any Region object or tab sees it: a value the API took but the protocol cannot carry is the
 * client's field (400 naming it), anything else the coordinator's bug (500); never a job a tab
 * ignores until its lease runs out against it.
 */
const tabs = useTabs();

function request(model: string, job: Partial<JobRequest["job"]> = {}): JobRequest {
  return {
    job: {
      model,
      input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
      sampling: { max_tokens: 4 },
      ...job,
    },
    requestId: "req_tab_job_check",
    owner: null,
    detachGraceMs: 500,
    priority: 1,
    match: { clientLocation: null, promptTokens: 1, maxTokens: 4, stream: false },
  };
}

/** What openJob threw (status, param, code), or the job it opened on a tab. */
async function outcome(req: JobRequest) {
  try {
    const opened = await openJob(appEnv, null, req);
    return { opened: opened.kind === "tab" ? opened.opened.jobId : opened.kind };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { status: err.status, param: err.param, code: err.code };
  }
}

describe("a job no tab could read is refused before it is opened", () => {
  it("a client value the protocol cannot carry is a 400 naming the request field", async () => {
    const tab = await tabs.tab(["check-client"]);
    const seed = await outcome(
      request("check-client", { sampling: { max_tokens: 4, seed: 2 ** 53 } }),
    );
    const stop = await outcome(
      request("check-client", { sampling: { max_tokens: 4, stop: ["a", "b", "c", "d", "e"] } }),
    );
    const peer = await outcome(request("check-client", { direct: { peerId: "tg-x-not-a-peer" } }));
    expect({ seed, stop, peer }).toEqual({
      seed: { status: 400, param: "seed", code: "invalid_value" },
      stop: { status: 400, param: "stop", code: "invalid_value" },
      peer: { status: 400, param: "tabgrid.peer_id", code: "invalid_value" },
    });
    // The tab was offered none of them: its first job is the valid one below.
    const valid = await outcome(request("check-client"));
    expect({ opened: (await tab.nextJob()).id }).toEqual(valid);
  });

  it("a part the coordinator builds itself is a 500 (our bug), not the client's", async () => {
    const broken = request("check-own", {
      input: {
        kind: "chat",
        messages: [{ role: "developer" as "system", content: "the template never sees this" }],
      },
    });
    expect(await outcome(broken)).toEqual({ status: 500, param: null, code: "internal" });
  });
});
