// The live debugger's buffer. A browser cannot render thousands of rows a second: the server
// already samples (at most 100 events a second per source and API process, a slow reader skips
// rather than backs up, each skip counted); on top of that the page shows at most
// `perSecond` events a second and keeps the newest `keep`, counting everything it drops. While
// paused nothing is added and arrivals are only counted.
//
// Delivery outcomes (the workers' "outcomes" messages) attach to their event's row, the newest
// per integration. One may arrive before its event (a fast worker, the event still being
// explained): it waits, for at most `pendingKeep` events, and attaches when the event comes.
// Outcomes of events never shown (sampled out) are dropped with that bound.

export interface LiveDecision {
  integration_id: string;
  name?: string | null;
  type?: string;
  decision: string;
  reason?: string;
}

export interface LiveOutcome {
  message_id: string;
  integration_id: string;
  name?: string | null;
  outcome: "delivered" | "retried" | "discarded" | "filtered" | "expired";
  reason?: string;
  status?: number;
  message?: string;
  attempt: number;
  at: number; // epoch seconds
}

export interface LiveEvent {
  source_id: string;
  message_id: string;
  type: string;
  received_at: string;
  event: Record<string, unknown>;
  routing: LiveDecision[];
  outcomes?: Record<string, LiveOutcome>; // per integration id, the newest
}

/** The newer of two outcomes of one event and integration (workers may answer out of order;
 * at the same time, a later attempt wins, then the one that arrived last). */
export function newer(old: LiveOutcome | undefined, next: LiveOutcome): LiveOutcome {
  if (!old) return next;
  if (next.at !== old.at) return next.at > old.at ? next : old;
  return next.attempt >= old.attempt ? next : old;
}

/** `event` with `outcomes` merged in (a new object when something changed). */
export function withOutcomes(event: LiveEvent, outcomes: LiveOutcome[]): LiveEvent {
  let merged = event.outcomes;
  for (const outcome of outcomes) {
    const current = merged?.[outcome.integration_id];
    const kept = newer(current, outcome);
    if (kept !== current) merged = { ...merged, [outcome.integration_id]: kept };
  }
  return merged === event.outcomes ? event : { ...event, outcomes: merged };
}

/** A short label for a badge: "delivered", "retried (HTTP 500)", "filtered (consent)". */
export function outcomeLabel(outcome: LiveOutcome): string {
  const detail = outcome.status ? `HTTP ${outcome.status}` : outcome.reason;
  return detail ? `${outcome.outcome} (${detail})` : outcome.outcome;
}

export interface LiveFilter {
  type: string;
  event: string;
  user: string;
}

export function matches(item: LiveEvent, filter: LiveFilter): boolean {
  const body = item.event;
  const text = (value: unknown) => (typeof value === "string" ? value.toLowerCase() : "");
  if (filter.type && item.type !== filter.type) return false;
  if (filter.event && !text(body.event).includes(filter.event.toLowerCase())) return false;
  if (filter.user) {
    const wanted = filter.user.toLowerCase();
    if (!text(body.userId).includes(wanted) && !text(body.anonymousId).includes(wanted)) {
      return false;
    }
  }
  return true;
}

export class LiveBuffer {
  items: LiveEvent[] = [];
  sampledOut = 0; // dropped here: more than perSecond arrived
  skippedByServer = 0; // the server's "skipped" counts
  outcomesSkippedByServer = 0; // the server's "outcomes_skipped" counts
  whilePaused = 0;
  paused = false;
  private windowStart = 0;
  private inWindow = 0;
  private pending = new Map<string, LiveOutcome[]>(); // outcomes ahead of their event

  constructor(
    readonly keep = 200,
    readonly perSecond = 20,
    readonly pendingKeep = 500,
  ) {}

  /** Offer one arrival at time `now` (ms); true when it is shown. */
  add(item: LiveEvent, now: number): boolean {
    if (this.paused) {
      this.whilePaused += 1;
      return false;
    }
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.sampledOut += 1;
      return false;
    }
    this.inWindow += 1;
    const early = this.pending.get(item.message_id);
    if (early) {
      this.pending.delete(item.message_id);
      item = withOutcomes(item, early);
    }
    this.items = [item, ...this.items].slice(0, this.keep);
    return true;
  }

  /** Attach a batch of outcomes to their rows; true when a shown row changed. Applied while
   * paused too: it changes badges, never which rows are shown. */
  outcomes(batch: LiveOutcome[]): boolean {
    const byEvent = new Map<string, LiveOutcome[]>();
    for (const outcome of batch) {
      const list = byEvent.get(outcome.message_id);
      if (list) list.push(outcome);
      else byEvent.set(outcome.message_id, [outcome]);
    }
    let changed = false;
    this.items = this.items.map((item) => {
      const mine = byEvent.get(item.message_id);
      if (!mine) return item;
      byEvent.delete(item.message_id);
      const merged = withOutcomes(item, mine);
      changed ||= merged !== item;
      return merged;
    });
    for (const [id, list] of byEvent) {
      const earlier = this.pending.get(id) ?? [];
      this.pending.delete(id); // re-inserted: the newest stay when the bound evicts
      this.pending.set(id, [...earlier, ...list]);
    }
    for (const id of this.pending.keys()) {
      if (this.pending.size <= this.pendingKeep) break;
      this.pending.delete(id);
    }
    return changed;
  }

  outcomesSkipped(count: number): void {
    this.outcomesSkippedByServer += count;
  }

  skipped(count: number): void {
    this.skippedByServer += count;
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
  }

  clear(): void {
    this.items = [];
    this.pending.clear();
    this.sampledOut = this.skippedByServer = this.outcomesSkippedByServer = this.whilePaused = 0;
  }
}
