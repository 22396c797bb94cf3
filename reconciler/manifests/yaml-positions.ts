/**
 * Maps JSON pointers in a parsed document back to where the user wrote them, so problems found on
 * plain data (by the validator) can be reported at a line and column.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { parsePointer } from './pointer.ts';

/** Follows aliases to the node they stand for, which is where the user wrote the value. */
function deref(doc: Document, node: unknown): unknown {
  let current = node;
  for (let hops = 0; isAlias(current) && hops < 100; hops++) current = current.resolve(doc);
  return current;
}

function isMergeKey(key: unknown): boolean {
  // With `merge: true` the yaml library gives `<<` keys a symbol value.
  return isScalar(key) && typeof key.value === 'symbol';
}

/** The pair for `key`: written in the map itself, or else merged in with `<<: *anchor`. */
function findPair(doc: Document, map: YAMLMap, key: string, depth = 0): Pair | undefined {
  const own = map.items.find((p) => !isMergeKey(p.key) && String(isScalar(p.key) ? p.key.value : p.key) === key);
  if (own || depth > 10) return own;
  for (const pair of map.items) {
    if (!isMergeKey(pair.key)) continue;
    const source = deref(doc, pair.value);
    const sources = isSeq(source) ? source.items.map((s) => deref(doc, s)) : [source];
    for (const s of sources) {
      const found = isMap(s) ? findPair(doc, s, key, depth + 1) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

function start(node: unknown): number | undefined {
  return (node as Node | null)?.range?.[0];
}

/**
 * Offset in the source of the node at `pointer` under `root` (of its key when `key`), or of the
 * nearest ancestor that exists when the path leads nowhere.
 */
export function offsetOf(doc: Document, root: unknown, pointer: string, key = false): number {
  const tokens = parsePointer(pointer);
  let node = deref(doc, root);
  let offset = start(node) ?? 0;
  for (const [i, token] of tokens.entries()) {
    const last = i === tokens.length - 1;
    let next: unknown;
    if (isMap(node)) {
      const pair = findPair(doc, node, token);
      if (!pair) break;
      if (last && key) return start(pair.key) ?? offset;
      // `name:` with nothing after it has no value node; the key is the best place to point at.
      next = pair.value ?? pair.key;
    } else if (isSeq(node) && /^\d+$/.test(token)) {
      next = node.items[Number(token)];
    }
    if (next === undefined || next === null || isPair(next)) break;
    node = deref(doc, next);
    offset = start(next) ?? offset;
  }
  return offset;
}
