// Makes an expensive response cheap under a flood: the body is rendered at most
// once per `ttlMs` and every request in between gets the same bytes (already
// UTF-8 encoded, so no request re-encodes it). Concurrent requests while a render
// runs share it. A failed render is never kept: the next request renders again.
// Bounded by construction: one body per cache, whatever the request rate.

export class RenderCache {
  private body: Buffer | undefined;
  private at = -Infinity;
  private pending: Promise<Buffer> | undefined;
  /** Renders done since start (tests count them; a flood must not raise it beyond one per ttl). */
  renders = 0;

  constructor(
    private readonly render: () => string | Promise<string>,
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<Buffer> {
    if (this.body && this.now() - this.at < this.ttlMs) return Promise.resolve(this.body);
    this.pending ??= this.renderOnce().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async renderOnce(): Promise<Buffer> {
    this.renders++;
    const body = Buffer.from(await this.render());
    this.body = body;
    this.at = this.now();
    return body;
  }
}
