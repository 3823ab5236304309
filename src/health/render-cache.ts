// Makes an expensive response cheap under a flood without making it stale in
// normal use: within each `ttlMs` window the first `freshPerWindow` requests get
// a fresh render; beyond that (a flood, not a scrape or a person) every request
// gets the last body, at most `ttlMs` old (already UTF-8 encoded, so no request
// re-encodes it). Concurrent requests while a render runs share it. A failed
// render is never kept: the next request renders again. Bounded by construction:
// one body per cache and at most `freshPerWindow` renders per window, whatever
// the request rate.

export class RenderCache {
  private body: Buffer | undefined;
  private windowStart = -Infinity;
  private rendersInWindow = 0;
  private pending: Promise<Buffer> | undefined;
  /** Renders done since start (tests count them; a flood must not raise it beyond `freshPerWindow` per ttl). */
  renders = 0;

  constructor(
    private readonly render: () => string | Promise<string>,
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly freshPerWindow = 4,
  ) {}

  get(): Promise<Buffer> {
    const t = this.now();
    if (t - this.windowStart >= this.ttlMs) {
      this.windowStart = t;
      this.rendersInWindow = 0;
    }
    if (this.pending) return this.pending;
    if (this.body && this.rendersInWindow >= this.freshPerWindow) return Promise.resolve(this.body);
    this.rendersInWindow++;
    this.pending = this.renderOnce().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async renderOnce(): Promise<Buffer> {
    this.renders++;
    const body = Buffer.from(await this.render());
    this.body = body;
    return body;
  }
}
