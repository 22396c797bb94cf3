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

/** Whether the text has more than `limit` of the characters that could open a level (most files do not). */
export function mayNestDeeperThan(text: string, limit: number): boolean {
  let openers = 0;
  let indicators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) openers++;
    else if (c === 0x2d || c === 0x3f) indicators++;
  }
  return openers > limit || indicators > limit;
}

/**
 * Follows the lexer's tokens (yaml's Lexer: iterative, and it tells indicators from scalars,
 * quoted, block or plain, exactly) and says where flow collections, or block sequences on one
 * line, first nest more than `limit` deep. Fed the very tokens the parser gets, so the text is
 * lexed once, and the parse is stopped there, before its cost grows with the nesting.
 */
export class NestingWatch {
  private offset = 0;
  private flow = 0;
  private run = 0;
  private inRun = true;
  private scalarNext = false;

  constructor(private readonly limit: number) {}

  feed(token: string): NestingProblem | undefined {
    const { limit } = this;
    if (token === DOCUMENT || token === FLOW_END) return undefined;
    if (token === SCALAR) {
      this.scalarNext = true;
      return undefined;
    }
    const at = this.offset;
    this.offset += token.length;
    if (this.scalarNext) {
      this.scalarNext = false;
      this.inRun = false;
      return undefined;
    }
    if (token === '[' || token === '{') {
      if (++this.flow > limit) return { offset: at, message: deeper(limit) };
      this.inRun = false;
    } else if (token === ']' || token === '}') {
      this.flow = Math.max(0, this.flow - 1);
    } else if (token === '\n' || token === '\r\n' || token === '---') {
      this.inRun = true;
      this.run = 0;
    } else if (this.inRun && (token === '-' || token === '?')) {
      if (++this.run > limit) return { offset: at, message: deeper(limit) };
    } else if (!(this.inRun && (token[0] === ' ' || token[0] === '\t' || token[0] === '&' || token[0] === '!' || token === ':'))) {
      this.inRun = false;
    }
    return undefined;
  }
}

/**
 * Where the text nests flow collections, or block sequences on one line, more than `limit` deep;
 * undefined when it does not (most files: fewer than `limit` of the characters that could open a
 * level at all are not even lexed). What this lets through the parser handles cheaply, and
 * depthProblem measures exactly.
 */
export function deepNestingAt(text: string, limit: number): NestingProblem | undefined {
  if (!mayNestDeeperThan(text, limit)) return undefined;
  const watch = new NestingWatch(limit);
  for (const token of new Lexer().lex(text)) {
    const problem = watch.feed(token);
    if (problem) return problem;
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

/**
 * depthProblem for a document without aliases: its nodes form a tree, so a plain walk in the same
 * order (keys and values of each pair, items of each sequence, depth first) finds the same first
 * collection past `max`, without remembering the height of every node.
 */
export function treeDepthProblem(root: unknown, max: number): NestingProblem | undefined {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (isMap(node)) {
      if (depth > max) return { offset: startOf(node), message: deeper(max) };
      for (let i = node.items.length - 1; i >= 0; i--) {
        const pair = node.items[i]!;
        stack.push([pair.value, depth + 1], [pair.key, depth + 1]);
      }
    } else if (isSeq(node)) {
      if (depth > max) return { offset: startOf(node), message: deeper(max) };
      for (let i = node.items.length - 1; i >= 0; i--) {
        const item = node.items[i];
        stack.push([isPair(item) ? item.value : item, depth + 1]);
      }
    }
  }
  return undefined;
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
