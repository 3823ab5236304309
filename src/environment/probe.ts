// What environment detection may look at: a few paths and the environment
// variables. The real adapter reads the file system; tests read fixture trees.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Probe {
  exists(path: string): Promise<boolean>;
  /** The file's text, or undefined when it does not exist or cannot be read. */
  readFile(path: string): Promise<string | undefined>;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * The host's file system under `root` (default "/"), and `env`. A root other
 * than "/" serves fixture trees: /.dockerenv is looked up as ROOT/.dockerenv.
 */
export function fsProbe(env: Readonly<Record<string, string | undefined>> = process.env, root = '/'): Probe {
  const at = (p: string): string => (root === '/' ? p : join(root, p));
  return {
    env,
    exists: async (p) => {
      try {
        await access(at(p));
        return true;
      } catch {
        return false; // absent or unreadable: the marker file is not there, which is the answer
      }
    },
    readFile: async (p) => {
      try {
        return await readFile(at(p), 'utf8');
      } catch {
        return undefined; // absent or unreadable: the caller treats it as not there
      }
    },
  };
}
