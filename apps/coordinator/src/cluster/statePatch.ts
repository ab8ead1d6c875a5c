/**
 * What changed between two JSON values, and that change applied to the first: how the cluster log
 * carries a strategy's state from one round to the next. A state holds what grows with every
 * identity the task has seen (newcomer probation's counts, fl-core probation.ts), while a round
 * changes only its own clients' entries; a log entry holding the whole state each round would grow
 * with the task's identities and be read by every node.
 *
 * A patch is `{ set: value }` (the value replaced) or `{ keys: { k: patch }, drop?: [k], at?: { k: i } }`:
 * an object's changed keys patched, `drop`'s removed, and each new key (set) placed at index `i` of
 * the new object's keys. Key order is kept, so `JSON.stringify` of the patched value is the text
 * `JSON.stringify` gave the new value (an object whose kept keys changed order is set whole).
 * Arrays change whole.
 */
import { CoordinatorError } from '../errors.js';

/** One change; see the module comment. */
export type JsonPatch =
  | { readonly set: unknown }
  | { readonly keys: Readonly<Record<string, JsonPatch>>; readonly drop?: readonly string[]; readonly at?: Readonly<Record<string, number>> };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Record<string, unknown>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  const other = Object.keys(b);
  return keys.length === other.length && keys.every((k, i) => k === other[i] && deepEqual(a[k], b[k]));
}

/** The patch taking `before` to `after` (JSON values), or null when they are equal, key order included. */
export function diffJson(before: unknown, after: unknown): JsonPatch | null {
  if (!isObject(before) || !isObject(after)) return deepEqual(before, after) ? null : { set: after };
  const beforeKeys = Object.keys(before);
  const afterKeys = Object.keys(after);
  const kept = afterKeys.filter((k) => has(before, k));
  const stillThere = beforeKeys.filter((k) => has(after, k));
  if (kept.some((k, i) => k !== stillThere[i])) return { set: after };
  const changed: [string, JsonPatch][] = [];
  const at: [string, number][] = [];
  afterKeys.forEach((k, i) => {
    if (!has(before, k)) {
      changed.push([k, { set: after[k] }]);
      at.push([k, i]);
    } else {
      const inner = diffJson(before[k], after[k]);
      if (inner) changed.push([k, inner]);
    }
  });
  const drop = beforeKeys.filter((k) => !has(after, k));
  if (changed.length === 0 && drop.length === 0) return null;
  // fromEntries defines each key as an own property, '__proto__' included.
  return { keys: Object.fromEntries(changed), ...(drop.length > 0 ? { drop } : {}), ...(at.length > 0 ? { at: Object.fromEntries(at) } : {}) };
}

const schema = (message: string): CoordinatorError => new CoordinatorError('STORE_SCHEMA', message);

/** `patch` applied to `before` (not changed; unchanged parts are shared); throws `STORE_SCHEMA` when the patch is malformed or does not fit `before`. */
export function applyJsonPatch(before: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw schema('a state patch must be an object');
  if (has(patch, 'set')) return patch['set'];
  const keys = patch['keys'];
  const drop = patch['drop'] ?? [];
  const at = patch['at'] ?? {};
  if (!isObject(keys) || !Array.isArray(drop) || !drop.every((k) => typeof k === 'string') || !isObject(at))
    throw schema('a state patch holds `set`, or `keys` with optional `drop` and `at`');
  if (!isObject(before)) throw schema('a state patch of keys applies to an object only');
  const added = Object.entries(at);
  if (drop.length === 0 && added.length === 0) {
    // Only existing keys change: a copy (spread defines each own key, '__proto__' included) with those keys replaced in place.
    const out: Record<string, unknown> = { ...before };
    for (const [k, inner] of Object.entries(keys)) {
      if (!has(before, k)) throw schema(`a state patch changes a key '${k}' the state does not hold`);
      Object.defineProperty(out, k, { value: applyJsonPatch(before[k], inner), writable: true, enumerable: true, configurable: true });
    }
    return out;
  }
  const dropped = new Set(drop as string[]);
  const entries: [string, unknown][] = [];
  for (const [k, v] of Object.entries(before)) if (!dropped.has(k)) entries.push([k, has(keys, k) ? applyJsonPatch(v, keys[k]) : v]);
  for (const k of Object.keys(keys))
    if ((!has(before, k) || dropped.has(k)) && !has(at, k)) throw schema(`a state patch changes a key '${k}' the state does not hold`);
  added.sort(([, i], [, j]) => (i as number) - (j as number));
  for (const [k, i] of added) {
    const inner = keys[k];
    if (!isObject(inner) || !has(inner, 'set') || (has(before, k) && !dropped.has(k)))
      throw schema(`a state patch adds a key '${k}' without its value, or one the state holds`);
    if (!Number.isInteger(i) || (i as number) < 0 || (i as number) > entries.length) throw schema(`a state patch places a key '${k}' at ${String(i)}`);
    entries.splice(i as number, 0, [k, inner['set']]);
  }
  return Object.fromEntries(entries);
}
