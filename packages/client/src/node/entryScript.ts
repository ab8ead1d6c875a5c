/**
 * Whether a module runs as the process's entry script: `process.argv[1]` and the module's file
 * compared by real path (so a command reached through a `node_modules/.bin` link counts), never
 * true when another module that happens to share its name imports it.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Whether the module at `moduleUrl` (its `import.meta.url`) is the entry script of this process. */
export function isEntryScript(moduleUrl: string, entry: string | undefined = process.argv[1]): boolean {
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
