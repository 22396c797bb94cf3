/**
 * How deeply a YAML (or JSON) document nests, measured without recursion, so that neither a deep
 * document nor one that only looks deep can exhaust the stack, the memory or the time. Pure.
 *
 *   deepNestingAt(text, limit)   before parsing: a cheap look at the text for what takes 1 or 2
 *                                bytes a level (`[[[[`, `{a: {a:`, `- - - -`); the parser would
 *                                spend seconds and hundreds of MB on a 1 MiB file of it
 *   depthProblem(doc, root, max) after parsing: the exact depth of the document's nodes, aliases
 *                                followed (each node measured once), before toJS and the validator
 */
import { isAlias, isMap, isPair, isSeq, Lexer, type Document } from 'yaml';

export interface NestingProblem {
  /** Offset in the source. */
  offset: number;
  message: string;
}

const deeper = (limit: number, how = '') => `collections nest deeper than the limit of ${limit} levels${how}`;

// The lexer's control tokens (yaml's cst.ts): a document starts, a scalar follows, a flow ended badly.
const DOCUMENT = '\x02';
const SCALAR = '\x1f';
const FLOW_END = '\x18';

/**
 * Where the text nests flow collections, or block sequences on one line, more than `limit` deep;
 * undefined when it does not (most files: fewer than `limit` of the characters that could open a
 * level at all are not even lexed). What this lets through the parser handles cheaply, and
 * depthProblem measures exactly.
 */
export function deepNestingAt(text: string, limit: number): NestingProblem | undefined {
  let openers = 0;
  let indicators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) openers++;
    else if (c === 0x2d || c === 0x3f) indicators++;
  }
  if (openers <= limit && indicators <= limit) return undefined;
  // The lexer is iterative and tells indicators from scalars (quoted, block, plain) exactly.
  let offset = 0;
  let flow = 0;
  let run = 0;
  let inRun = true;
  let scalarNext = false;
  for (const token of new Lexer().lex(text)) {
    if (token === DOCUMENT || token === FLOW_END) continue;
    if (token === SCALAR) {
      scalarNext = true;
      continue;
    }
    const at = offset;
    offset += token.length;
    if (scalarNext) {
      scalarNext = false;
      inRun = false;
      continue;
    }
    if (token === '[' || token === '{') {
      if (++flow > limit) return { offset: at, message: deeper(limit) };
      inRun = false;
    } else if (token === ']' || token === '}') {
      flow = Math.max(0, flow - 1);
    } else if (token === '\n' || token === '\r\n' || token === '---') {
      inRun = true;
      run = 0;
    } else if (inRun && (token === '-' || token === '?')) {
      if (++run > limit) return { offset: at, message: deeper(limit) };
    } else if (!(inRun && (token[0] === ' ' || token[0] === '\t' || token[0] === '&' || token[0] === '!' || token === ':'))) {
      inRun = false;
    }
  }
  return undefined;
}

function children(node: unknown): unknown[] {
  if (isMap(node)) return node.items.flatMap((p) => [p.key, p.value]);
  if (isSeq(node)) return node.items.map((item) => (isPair(item) ? item.value : item));
  return [];
}

function startOf(node: unknown): number {
  return (node as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
}

/** Where the document nests collections more than `max` deep (an alias counts as what it stands for). */
export function depthProblem(doc: Document.Parsed, root: unknown, max: number): NestingProblem | undefined {
  const target = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc) : node);
  // Height of each collection measured so far (1 for one without collections below); -1 while on the stack.
  const height = new Map<unknown, number>();
  const stack: { node: unknown; depth: number; next?: unknown[]; i: number }[] = [{ node: target(root), depth: 1, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === undefined) {
      if (!isMap(top.node) && !isSeq(top.node)) {
        stack.pop();
        continue;
      }
      if (top.depth > max) return { offset: startOf(top.node), message: deeper(max) };
      height.set(top.node, -1);
      top.next = children(top.node).map(target);
    }
    if (top.i === top.next.length) {
      let below = 0;
      for (const c of top.next) below = Math.max(below, height.get(c) ?? 0);
      height.set(top.node, 1 + below);
      stack.pop();
      continue;
    }
    const child = top.next[top.i++];
    const known = height.get(child);
    if (known === -1) return { offset: startOf(child), message: 'an alias refers to a collection that contains it' };
    if (known !== undefined) {
      if (top.depth + known > max) return { offset: startOf(child), message: deeper(max, ' (through an alias)') };
      continue;
    }
    stack.push({ node: child, depth: top.depth + 1, i: 0 });
  }
  return undefined;
}
