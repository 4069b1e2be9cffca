import type { Config } from "../config.js";
import { log } from "../http/log.js";
import type { CoordinatorMessage } from "../../shared/protocol/node-messages.js";
import { BALANCE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import type { JobRow, MatchFacts } from "../region/job-store.js";
import { publicNodeId } from "../region/public-id.js";
import type { TabRecord } from "../region/tab-registry.js";
import { QueueClass } from "../../shared/scheduling/wait-queue.js";
import type { CreditedModels } from "./credited-models.js";
import { ownerKeyId } from "./ledger-client.js";
import { LedgerOutbox, type OutboxDeps } from "./ledger-outbox.js";
import type {
  AccountView,
  Earning,
  LedgerOp,
  LedgerOpDone,
  LedgerOpResult,
} from "./ledger-types.js";
import { priceOfClass } from "./tiers.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";
import { mostHonestTokens } from "../../shared/trust/token-counts.js";
import type { ConfirmedCount } from "../region/accusations.js";

/** The ledger's entry points a Region uses (the `global` LedgerDurableObject's RPC stub). */
export interface LedgerPort {
  balance(identity: string, publicId?: string): Promise<AccountView>;
  /** Changes, in order, from the Region's outbox (ledger-outbox.ts). */
  apply(ops: LedgerOp[]): Promise<LedgerOpResult[]>;
}

/** What a Region object needs of the ledger: its entry points, the price table, what earns. */
export interface RegionLedger {
  port: LedgerPort;
  prices: Config["credits"];
  models: CreditedModels;
}

/**
 * A Region's side of the credit ledger: it reports each job's credit — the Region's own count,
 * weighted by the latency tier the tab delivered — tells the tab its balance, passes quarantines
 * on, and settles what a key set aside for a queued request. Ledger calls never hold up a job:
 * each change goes into the Region's durable outbox in the event that decides it and is sent
 * after (ledger-outbox.ts), retried until the ledger took it.
 */
export class RegionCredits {
  /** Calls still running, so tests (and eviction) can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();

  /** The ledger's entry points; a test may wrap them to fail (test/workerd/credit-helpers.ts). */
  port: LedgerPort;
  private readonly outbox: LedgerOutbox;
  private readonly prices: Config["credits"];
  /** Which models earn; a test may replace it (the workerd tests run with CREDIT_MODELS=any). */
  models: CreditedModels;

  constructor(
    ledger: RegionLedger,
    store: Pick<OutboxDeps, "sql" | "retryAt">,
    private readonly send: (tab: TabRecord, msg: CoordinatorMessage) => boolean,
    /** The connected tab of an identity, if any. */
    private readonly tabOf: (identity: string) => TabRecord | undefined,
    /**
     * Credit the ledger took back from an identity's balance: the Region's own figure of what the
     * identity earned here (tab-trust.ts, shown by GET /v1/nodes) falls by as much.
     */
    private readonly tookBack?: (identity: string, credit: number) => void,
  ) {
    this.port = ledger.port;
    this.prices = ledger.prices;
    this.models = ledger.models;
    this.outbox = new LedgerOutbox({
      ...store,
      apply: (ops) => this.port.apply(ops),
      done: (op, result) => this.done(op, result),
    });
  }

  /**
   * Credits per completion token for this job. 0 for a model outside the catalog
   * (credited-models.ts). The interactive weight only when the job took the interactive tier's
   * paid place — its key set credit aside for it (queue-place.ts), so the client pays the
   * interactive price — and its first token was relayed within its latency budget (the Region's
   * clock, from when it took the request, queue time included); else the batch weight. A budget
   * alone is a field any client sets for free, the tab's own client included: it earns nothing.
   */
  weightOf(row: JobRow, facts: MatchFacts): number {
    if (!this.models.has(row.model)) return 0;
    const budget = facts.latencyBudgetMs;
    const ttft = row.first_token_at === null ? null : row.first_token_at - row.created_at;
    const paid = row.priority === QueueClass.interactive;
    const interactive = paid && budget !== undefined && ttft !== null && ttft <= budget;
    return interactive ? this.prices.weight.interactive : this.prices.weight.batch;
  }

  /** Report a job's credit for the tab's identity and tell the tab its balance. */
  earned(tab: TabRecord, e: Omit<Earning, "identity" | "publicId">): void {
    if (isAnonymous(tab.tabId)) return; // one connection long: nothing to keep
    this.outbox.push({
      kind: "earn",
      earning: { ...e, identity: tab.tabId, publicId: tab.publicId },
    });
  }

  /**
   * A tab with an identity joined: open its account if new, and tell it its balance. The hosted
   * models' ids are read again if stale, so they are in before the tab finishes a job.
   */
  joined(tab: TabRecord): void {
    void this.models.refresh();
    if (isAnonymous(tab.tabId)) return;
    this.track(
      this.port.balance(tab.tabId, tab.publicId).then((account) => this.tell(tab, account)),
      "balance",
    );
  }

  /**
   * The Region quarantined an identity: the ledger withholds its credit everywhere (in every
   * Region it connects to) and its linked key cannot spend it; the tab, if still connected, is told.
   */
  quarantined(identity: string): void {
    if (isAnonymous(identity)) return;
    const quarantine = async () => {
      const publicId = await publicNodeId(identity);
      this.outbox.push({ kind: "quarantine", identity, publicId });
    };
    this.track(quarantine(), "quarantine");
  }

  /**
   * A job reached its end: if it waited with a paid place (the Worker set credit aside for it:
   * `hold_id`), charge its key the completion tokens delivered at its class's price (nothing
   * unless it finished) and release the rest of what was set aside. The hold is the job's own, and
   * the ledger settles it only for the key that made it.
   */
  settled(row: JobRow | undefined): void {
    const keyId = ownerKeyId(row?.owner);
    if (!row?.hold_id || keyId === null) return;
    const price = priceOfClass(this.prices, row.priority);
    const tokens = row.state === "done" ? (row.completion_tokens ?? 0) : 0;
    const job = { jobId: row.id, tokens };
    this.outbox.push({ kind: "settle", holdId: row.hold_id, keyId, charge: tokens * price, job });
  }

  /**
   * A second binding verifier confirmed that a tab's completion-token count of an answer was
   * inflated (accusations.ts; once per answer): the ledger takes back the credit paid for the
   * tokens over the most an honest tab could have reported, and gives the client back what it paid
   * for them; the tab, if connected, is told its balance. That most is the tolerance's bound over
   * the larger of the verifiers' counts (token-counts.ts `mostHonestTokens`), not a count itself:
   * an honest tab reports up to that many (the stop token, a template's stop string, sampled
   * splits the encoder merges), so only tokens no honest count explains are taken back, and a
   * verifier counting low cannot take more than the other's count allows. The identity's other
   * answers of the last day are re-priced at the share this one kept (take-backs.ts).
   */
  countConfirmed(c: ConfirmedCount): void {
    if (c.counted.length === 0) return;
    const keepTokens = mostHonestTokens(Math.max(...c.counted));
    if (c.claimed <= keepTokens) return;
    const reason =
      `credit taken back: token count of job ${c.jobId} inflated (${c.claimed} reported, ` +
      `at most ${keepTokens} honest), confirmed by two verifiers`;
    this.outbox.push({
      kind: "takeBack",
      takeBack: { jobId: c.jobId, identity: c.subject, keepTokens, reason },
      publicId: c.subjectPublic,
    });
  }

  /** The ledger's retry timer fired (region-alarms.ts): send the outbox again. */
  retry(): Promise<void> {
    return this.outbox.flush();
  }

  /** The Region woke: send what its outbox held before the eviction. */
  resume(): void {
    this.outbox.resume();
  }

  /** Changes waiting for the ledger (status; tests). */
  get waiting(): number {
    return this.outbox.size;
  }

  /** The ledger took an operation from the outbox: tell the tab, follow a take-back here. */
  private done(op: LedgerOp, result: LedgerOpDone): void {
    if (op.kind === "earn" && result.kind === "earn")
      this.tellIdentity(op.earning.identity, result.account);
    else if (op.kind === "quarantine" && result.kind === "quarantine")
      this.tellIdentity(op.identity, result.account);
    else if (op.kind === "takeBack" && result.kind === "takeBack") {
      const { done } = result;
      const { jobId, identity } = op.takeBack;
      if (!done.fresh) return;
      // Withheld credit (paid while quarantined) was never in the Region's figure. The other
      // answers re-priced may have been served in other Regions: this figure falls by them too,
      // never below 0 (it would otherwise go on showing credit the ledger took back).
      const fromBalance = (done.fromWithheld ? 0 : done.taken) + done.alike.taken;
      if (fromBalance > 0) this.tookBack?.(identity, fromBalance);
      const { account, ...figures } = done;
      log("warn", "credit taken back for an inflated count", {
        jobId,
        tab: op.publicId,
        ...figures,
      });
      this.tellIdentity(identity, account);
    }
  }

  /** Tell the identity's tab, if connected here, its balance. */
  private tellIdentity(identity: string, account: AccountView): void {
    const tab = this.tabOf(identity);
    if (tab) this.tell(tab, account);
  }

  /** Wait for the ledger calls started so far, and the outbox's sending. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    await this.outbox.idle();
  }

  private tell(tab: TabRecord, account: AccountView): void {
    if (!speaksBalance(tab)) return;
    this.send(tab, { type: "credit.balance", ...account });
  }

  private track(p: Promise<unknown>, what: string): void {
    const tracked = p
      .catch((err: unknown) => log("warn", `credit ledger: ${what} failed`, { error: String(err) }))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}

/** Whether the tab's hello said it speaks the protocol that has `credit.balance`. */
function speaksBalance(tab: TabRecord): boolean {
  return tab.protocol >= BALANCE_SINCE_PROTOCOL;
}
