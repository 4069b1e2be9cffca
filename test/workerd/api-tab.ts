import type { EmbeddingInput, JobSpec } from "../../shared/protocol/job.js";
import { logprobsFrames, type TokenLogprob } from "../../shared/protocol/logprobs.js";
import { vectorFrames } from "../../shared/protocol/vector-frames.js";
import { DeterministicEngine } from "../support/deterministic-engine.js";
import { ScriptedTab } from "./scripted-tab.js";

/**
 * A contributor tab for API-compatibility tests in workerd: the real protocol over a real WebSocket
 * (ScriptedTab), answering every job with the deterministic test engine through the
 * InferenceEngine interface, so the answer follows the job's constraint (JSON schema, tool
 * envelope) as WebLLM's grammar would make it. `jobs` records what the coordinator sent.
 */
export class EngineTab {
  readonly jobs: JobSpec[] = [];
  private stopped = false;

  private constructor(
    readonly tab: ScriptedTab,
    private readonly engine: DeterministicEngine,
  ) {}

  /** Connect, signed with `keys` when given (anonymous otherwise). */
  static async connect(model: string, keys?: CryptoKeyPair): Promise<EngineTab> {
    const tab = await ScriptedTab.connect([model], keys);
    const engine = new DeterministicEngine(1);
    await engine.load(
      { model: `https://x.test/${model}`, model_id: model, model_lib: "x" },
      () => {},
    );
    const t = new EngineTab(tab, engine);
    void t.serveLoop();
    return t;
  }

  private async serveLoop(): Promise<void> {
    while (!this.stopped) {
      const assign = await Promise.race([
        this.tab.next("job.assign"),
        this.tab.closed.then(() => null),
      ]);
      if (!assign) return;
      const { job } = assign;
      this.jobs.push(job);
      this.tab.send({ type: "job.accept", jobId: job.id });
      if (job.input.kind === "embedding") {
        await this.embed(job.id, job.input);
        continue;
      }
      let seq = 0;
      let given = 0;
      // As the tab runtime does: each piece's log-probabilities right after its text.
      const onDelta = (text: string, logprobs?: TokenLogprob[]) => {
        this.tab.send({ type: "job.delta", jobId: job.id, seq: seq++, text });
        for (const frame of logprobsFrames(job.id, logprobs ?? [])) this.tab.send(frame);
        given += logprobs?.length ?? 0;
      };
      const request = {
        sampling: job.sampling,
        ...(assign.continueFrom ? { continueFrom: assign.continueFrom } : {}),
      };
      const result =
        job.input.kind === "chat"
          ? await this.engine.chat({ ...request, messages: job.input.messages }, onDelta)
          : await this.engine.complete({ ...request, prompt: job.input.prompt }, onDelta);
      if (result.logprobs)
        for (const frame of logprobsFrames(job.id, result.logprobs.slice(given)))
          this.tab.send(frame);
      this.tab.send({
        type: "job.done",
        jobId: job.id,
        finishReason: result.finishReason,
        usage: result.usage,
      });
    }
  }

  /** An embedding job: the engine's vectors in `job.vectors` frames (as the tab runtime cuts them). */
  private async embed(jobId: string, input: EmbeddingInput): Promise<void> {
    const result = await this.engine.embed({ texts: input.inputs, dimensions: input.dimensions });
    for (const frame of vectorFrames(jobId, result.vectors)) this.tab.send(frame);
    const usage = {
      prompt_tokens: result.promptTokens,
      completion_tokens: 0,
      total_tokens: result.promptTokens,
    };
    this.tab.send({ type: "job.done", jobId, finishReason: "stop", usage });
  }

  close(): void {
    this.stopped = true;
    this.tab.close();
  }
}
