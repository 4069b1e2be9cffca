import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type { ClientDurableObject } from "./client-do.js";

/**
 * A caller's concurrency slot is held exactly as long as something can still use a tab on the
 * caller's behalf (docs/limits.md, "Concurrency slots"). Its holders, kept by the caller's Client
 * object (client-do.ts):
 *
 *   - the request admitted with it (`REQUEST_HOLDER`), from admission until it hands the slot to
 *     the jobs it opened (`SlotHold.handOver`, right after opening them) or, if it opened none (a
 *     refusal, the cloud fallback), until its response ends;
 *   - each job it handed over to, until that job ends: done, failed, or cancelled — also by its
 *     resume grace running out after the client went away. The job's Region object lets go of it
 *     then (`slotPort`), whether or not the client is still connected, so neither a handler the
 *     runtime cancelled nor a client that hung up can keep or lose a slot early.
 *
 * Reading, resuming or cancelling a job takes no slot: the job holds its own.
 */
export const REQUEST_HOLDER = "request";

/** Where a job's slot is kept: the Client object's name (`key:<id>`, `ip:<limit key>`) and slot id. */
export interface SlotRef {
  client: string;
  slot: string;
}

/** A change to a slot's holders (client-do.ts `hold`). */
export interface HolderChange {
  add?: readonly string[];
  drop?: readonly string[];
  /** The request was refused before any job existed: its rate-limit token goes back. */
  refund?: boolean;
}

export function clientStub(env: AppEnv, name: string): DurableObjectStub<ClientDurableObject> {
  return env.CLIENT.get(env.CLIENT.idFromName(name));
}

/** How a Region object lets go of the slot of a job that ended (edge/region/job-readers.ts). */
export interface SlotPort {
  jobEnded(ref: SlotRef, jobId: string): Promise<void>;
}

export function slotPort(env: AppEnv): SlotPort {
  return {
    jobEnded: (ref, jobId) => clientStub(env, ref.client).hold(ref.slot, { drop: [jobId] }),
  };
}

/**
 * One request's hold on its caller's slot, in the Worker. Until the request lets go (hand-over or
 * release) the runtime is asked to keep running it after its client hangs up (`waitUntil`; up to
 * 30 s in production), so a client that leaves while its body uploads or its job opens does not
 * leave the slot behind with a cancelled handler.
 */
export class SlotHold {
  private held: boolean;
  private letGo: () => void = () => undefined;

  constructor(
    private readonly stub: DurableObjectStub<ClientDurableObject>,
    /** Null for a request admitted without a slot (the job routes). */
    readonly ref: SlotRef | null,
    private readonly ctx: { waitUntil(promise: Promise<unknown>): void },
  ) {
    this.held = ref !== null;
    if (this.held) ctx.waitUntil(new Promise<void>((resolve) => (this.letGo = resolve)));
  }

  /** Whether the request itself still holds the slot (it opened no job, or keeps it besides them). */
  get holding(): boolean {
    return this.held;
  }

  /**
   * The jobs this request opened hold the slot from now until each ends. The request's own hold
   * ends here too, unless `keepRequest` (its answer comes from elsewhere: the cloud fallback).
   */
  handOver(jobIds: readonly string[], { keepRequest = false } = {}): void {
    if (!this.ref || !this.held) return;
    if (keepRequest && jobIds.length === 0) return;
    if (!keepRequest) this.ended();
    this.send({ add: jobIds, drop: keepRequest ? [] : [REQUEST_HOLDER] });
  }

  /** The request's response ended (or it failed) while it still held the slot itself. */
  release(refund: boolean): void {
    if (this.held) {
      this.ended();
      this.send({ drop: [REQUEST_HOLDER], refund });
    } else if (refund) {
      // Admitted without a slot: only the token goes back.
      this.ctx.waitUntil(this.stub.hold(null, { refund }).catch(warn));
    }
  }

  private ended(): void {
    this.held = false;
    this.letGo();
  }

  private send(change: HolderChange): void {
    // One stub for every call of the request, so its calls reach the object in order.
    this.ctx.waitUntil(this.stub.hold(this.ref!.slot, change).catch(warn));
  }
}

function warn(err: unknown): void {
  log("warn", "concurrency slot update failed", { error: String(err) });
}
