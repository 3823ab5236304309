// One client's TCP connection to the forwarder: RFC 1035 §4.2.2 framing,
// several queries answered as they complete (RFC 7766 §6.2.1.1), and every
// resource the client can make us hold bounded:
// - queries in flight: at most `maxInflight`; beyond, we stop reading;
// - answers it does not read: above `pauseBytes` unsent we stop reading, above
//   `closeBytes` (or when all connections together hold `totalQueuedBytes`) we close;
// - buffered input: one query frame of at most `maxQueryBytes` plus one read;
// - time: a connection that completes no query and takes no answer for `idleMs` is closed.
// No error of one connection, thrown or rejected, leaves this file.
import type net from 'node:net';
import type { DropTally } from './admission.js';

export type Handler = (msg: Buffer, via: 'udp' | 'tcp') => Promise<Buffer | undefined>;

export interface TcpLimits {
  readonly maxInflight: number;
  readonly pauseBytes: number;
  readonly closeBytes: number;
  readonly totalQueuedBytes: number;
  readonly maxQueryBytes: number;
  readonly idleMs: number;
}

/** Calls `handle`, turning a synchronous throw into a rejection. */
export function invoke(handle: Handler, msg: Buffer, via: 'udp' | 'tcp'): Promise<Buffer | undefined> {
  try {
    return Promise.resolve(handle(msg, via));
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

/** Length-prefixed frames out of a byte stream, without quadratic copying for tiny reads. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxFrame: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  get buffered(): number {
    return this.length;
  }

  /** The next whole frame, undefined when incomplete; throws on a frame over `maxFrame`. */
  next(): Buffer | undefined {
    if (this.length < 2) return undefined;
    const head = this.peek(2);
    const n = head.readUInt16BE(0);
    if (n > this.maxFrame) throw new RangeError(`query of ${n} bytes over the ${this.maxFrame}-byte limit`);
    if (this.length < 2 + n) return undefined;
    return this.take(2 + n).subarray(2);
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const all = this.peek(n);
    const out = Buffer.from(all.subarray(0, n));
    if (all.length === n) this.chunks.shift();
    else this.chunks[0] = all.subarray(n);
    this.length -= n;
    return out;
  }
}

export function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

export interface SessionContext {
  readonly handle: Handler;
  readonly limits: TcpLimits;
  readonly drops: DropTally;
  /** Bytes queued unsent on every open connection together. */
  readonly queuedTotal: () => number;
  /** Told the bytes queued unsent on this connection after each answer (the listener keeps the peak). */
  readonly onQueued: (bytes: number) => void;
}

export function serveTcpSession(sock: net.Socket, ctx: SessionContext): void {
  const { limits: l, drops } = ctx;
  const reader = new FrameReader(l.maxQueryBytes);
  let inflight = 0;
  /** The client half-closed: answer what it asked, then end our side (the server allows half-open sockets). */
  let ended = false;
  const idle = setTimeout(() => close('idle'), l.idleMs);
  idle.unref();

  function close(reason: string): void {
    if (sock.destroyed) return;
    drops.add(reason);
    sock.destroy();
  }

  /** Starts the queries already buffered, then reads again only when nothing holds us back. */
  function pump(): void {
    if (sock.destroyed) return;
    while (inflight < l.maxInflight) {
      let msg: Buffer | undefined;
      try {
        msg = reader.next();
      } catch {
        close('oversized-query');
        return;
      }
      if (!msg) break;
      start(msg);
    }
    if (ended && inflight === 0) {
      sock.end();
      return;
    }
    const blocked = inflight >= l.maxInflight || sock.writableLength > l.pauseBytes;
    if (blocked) sock.pause();
    else if (sock.isPaused()) sock.resume();
  }

  function start(msg: Buffer): void {
    inflight++;
    idle.refresh();
    invoke(ctx.handle, msg, 'tcp')
      .then(answer, () => close('handler-failed'))
      .catch(() => close('write-failed'))
      .finally(() => {
        inflight--;
        pump();
      });
  }

  function answer(resp: Buffer | undefined): void {
    if (!resp || sock.destroyed) return;
    // encodeClientResponse keeps TCP answers within 65,535 bytes; anything else is a bug, not a reason to crash.
    if (resp.length > 0xffff) return close('answer-too-large');
    sock.write(frame(resp));
    idle.refresh();
    ctx.onQueued(sock.writableLength);
    if (sock.writableLength <= l.pauseBytes) return;
    // The client is not reading its answers.
    if (sock.writableLength > l.closeBytes || ctx.queuedTotal() > l.totalQueuedBytes) close('not-reading');
  }

  sock.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    pump();
  });
  sock.on('end', () => {
    ended = true;
    pump();
  });
  sock.on('drain', pump);
  sock.on('error', () => sock.destroy());
  sock.on('close', () => clearTimeout(idle));
}
