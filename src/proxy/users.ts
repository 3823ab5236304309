// PROXY_USERS_FILE: `name:password` lines (blank lines and # comments allowed).
// Passwords are kept only as SHA-256 digests and compared in constant time;
// they never appear in an error, a log line or /status.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/** A user name may not contain the username grammar's keywords, or `-country-se` would be ambiguous. */
const NAME = /^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$/;
const KEYWORD = /-(country|city|relay|session)-/;
const MAX_USERS = 10_000;

export class ProxyUsers {
  private constructor(private readonly digests: ReadonlyMap<string, Buffer>) {}

  static parse(text: string, file: string): ProxyUsers {
    const digests = new Map<string, Buffer>();
    const lines = text.split(/\r?\n/);
    lines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ConfigError(where, 'expected name:password');
      const name = line.slice(0, colon);
      const password = line.slice(colon + 1);
      if (!NAME.test(name) || name.length > 64 || KEYWORD.test(`${name}-`))
        throw new ConfigError(where, 'the user name must be 1-64 letters, digits, _ . - without -country-, -city-, -relay-, -session-');
      if (password.length === 0 || password.length > 255) throw new ConfigError(where, 'the password must be 1 to 255 characters (SOCKS5 carries at most 255)');
      if (digests.has(name)) throw new ConfigError(where, `user '${name}' appears twice`);
      digests.set(name, digest(password));
    });
    if (digests.size === 0) throw new ConfigError(file, 'names no user', 'add name:password lines; the proxy is never open');
    if (digests.size > MAX_USERS) throw new ConfigError(file, `more than ${MAX_USERS} users`);
    return new ProxyUsers(digests);
  }

  static async load(file: string): Promise<ProxyUsers> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new ConfigError('PROXY_USERS_FILE', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'mount the users file (a Secret in Kubernetes)');
    }
    return ProxyUsers.parse(text, file);
  }

  get size(): number {
    return this.digests.size;
  }

  /** Constant-time in the password; an unknown name costs the same as a wrong password. */
  check(name: string, password: string): boolean {
    const want = this.digests.get(name);
    const got = digest(password);
    return timingSafeEqual(want ?? DUMMY, got) && want !== undefined;
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const DUMMY = digest('\u0000no such user');
