// The live debugger's buffer. A browser cannot render thousands of rows a second: the server
// already samples (at most 100 events a second per source and API process, a slow reader skips
// rather than backs up, each skip counted); on top of that the page shows at most
// `perSecond` events a second and keeps the newest `keep`, counting everything it drops. While
// paused nothing is added and arrivals are only counted.

export interface LiveDecision {
  integration_id: string;
  name?: string | null;
  type?: string;
  decision: string;
  reason?: string;
}

export interface LiveEvent {
  source_id: string;
  message_id: string;
  type: string;
  received_at: string;
  event: Record<string, unknown>;
  routing: LiveDecision[];
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
  whilePaused = 0;
  paused = false;
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    readonly keep = 200,
    readonly perSecond = 20,
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
    this.items = [item, ...this.items].slice(0, this.keep);
    return true;
  }

  skipped(count: number): void {
    this.skippedByServer += count;
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
  }

  clear(): void {
    this.items = [];
    this.sampledOut = this.skippedByServer = this.whilePaused = 0;
  }
}
