// Reads a handshake message by message from a socket with a hard cap on what
// it buffers, then hands the socket over (paused, with any bytes read past the
// handshake) for relaying.
import type { Socket } from 'node:net';
import { SidecarError } from '../errors.js';

/** A client's handshake that cannot go on (malformed, or the client left): that connection ends, nothing else. */
export class HandshakeError extends SidecarError {
  override readonly code = 'E_PROXY_HANDSHAKE';
}

import type { Parsed } from './socks5-wire.js';

export class HandshakeReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onData = (d: Buffer): void => {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    // A client that sends more than any handshake needs is not a client: stop reading it.
    if (this.buf.length > this.limit) {
      this.closed = true;
      this.sock.destroy();
    }
    this.wake?.();
  };
  private readonly onClose = (): void => {
    this.closed = true;
    this.wake?.();
  };

  constructor(
    private readonly sock: Socket,
    private readonly limit: number,
  ) {
    sock.on('data', this.onData);
    sock.once('close', this.onClose);
    sock.once('end', this.onClose);
  }

  /** The first byte, without consuming it (picks the protocol). */
  async peek(): Promise<number> {
    while (this.buf.length === 0) await this.waitForData();
    return this.buf[0]!;
  }

  async read<T>(parse: (b: Buffer) => Parsed<T>): Promise<{ readonly kind: 'ok'; readonly used: number } & T> {
    for (;;) {
      const r = parse(this.buf);
      if (r.kind === 'ok') {
        this.buf = this.buf.subarray(r.used);
        return r;
      }
      if (r.kind === 'bad') throw new HandshakeError(r.why);
      await this.waitForData();
    }
  }

  /** Stops reading; returns bytes that arrived after the handshake. The socket is left paused. */
  detach(): Buffer {
    this.sock.pause();
    this.sock.off('data', this.onData);
    this.sock.off('close', this.onClose);
    this.sock.off('end', this.onClose);
    return this.buf;
  }

  private async waitForData(): Promise<void> {
    if (this.closed) throw new HandshakeError('client closed the connection during the handshake');
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.closed && this.buf.length === 0) throw new HandshakeError('client closed the connection during the handshake');
  }
}
