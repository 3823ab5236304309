// Which UDP ASSOCIATE a datagram arriving at the proxy's UDP port belongs to.
// Pure (a clock comes in). An association belongs to the IP of its TCP control
// connection, never to an address the client names; its port is the request's
// DST.PORT, or, when that is 0 (the client did not know it yet, RFC 1928 §7),
// the source port of the first datagram from that IP that no association owns:
// the OLDEST pending association of that IP takes it. Everything else is dropped.
export interface AssociationTableOptions {
  /** Associations open at once (bound and pending). */
  max: number;
  /** An association with no datagram either way for this long has expired. */
  idleMs: number;
  now: () => number;
}

export interface Association<T> {
  readonly id: number;
  readonly ip: string;
  /** 0 while pending (bound by the first datagram). */
  port: number;
  lastActive: number;
  readonly value: T;
}

export type AddResult<T> = { readonly ok: true; readonly association: Association<T> } | { readonly ok: false; readonly why: 'full' | 'port-in-use' };

const key = (ip: string, port: number): string => `${ip}|${port}`;

export class AssociationTable<T> {
  private readonly bound = new Map<string, Association<T>>();
  /** Per IP, in the order the associations were made. */
  private readonly pending = new Map<string, Association<T>[]>();
  private readonly all = new Set<Association<T>>();
  private nextId = 1;

  constructor(private readonly opts: AssociationTableOptions) {}

  get size(): number {
    return this.all.size;
  }

  get full(): boolean {
    return this.all.size >= this.opts.max;
  }

  add(ip: string, port: number, value: T): AddResult<T> {
    if (this.full) return { ok: false, why: 'full' };
    if (port !== 0 && this.bound.has(key(ip, port))) return { ok: false, why: 'port-in-use' };
    const a: Association<T> = { id: this.nextId++, ip, port, lastActive: this.opts.now(), value };
    this.all.add(a);
    if (port !== 0) this.bound.set(key(ip, port), a);
    else this.pending.set(ip, [...(this.pending.get(ip) ?? []), a]);
    return { ok: true, association: a };
  }

  /** The association a datagram from `ip:port` belongs to (binding a pending one), marked active; undefined: drop it. */
  route(ip: string, port: number): Association<T> | undefined {
    let a = this.bound.get(key(ip, port));
    if (!a) {
      const waiting = this.pending.get(ip);
      a = waiting?.shift();
      if (!a) return undefined;
      if (waiting!.length === 0) this.pending.delete(ip);
      a.port = port;
      this.bound.set(key(ip, port), a);
    }
    a.lastActive = this.opts.now();
    return a;
  }

  touch(a: Association<T>): void {
    a.lastActive = this.opts.now();
  }

  /** Forgets `a`; true if it was still there (so the caller closes it once). */
  remove(a: Association<T>): boolean {
    if (!this.all.delete(a)) return false;
    if (a.port !== 0) {
      if (this.bound.get(key(a.ip, a.port)) === a) this.bound.delete(key(a.ip, a.port));
    } else {
      const rest = (this.pending.get(a.ip) ?? []).filter((x) => x !== a);
      if (rest.length) this.pending.set(a.ip, rest);
      else this.pending.delete(a.ip);
    }
    return true;
  }

  /** Associations idle past idleMs (still in the table: remove and close each). */
  expired(): Association<T>[] {
    const cutoff = this.opts.now() - this.opts.idleMs;
    return [...this.all].filter((a) => a.lastActive <= cutoff);
  }

  values(): Association<T>[] {
    return [...this.all];
  }
}
