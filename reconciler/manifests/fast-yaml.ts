/**
 * The plain YAML most manifests are, read by js-yaml's event parser: about 5× faster than the
 * `yaml` library's lexer, parser and composer (57% of a cold load of 10,000 deployments went to
 * them). It keeps no tree, so it can give nothing but the documents' data and where each starts.
 *
 * It is only ever a shortcut: `fastDocuments` answers undefined for anything where the two
 * libraries could disagree or where the full reader owns the message (syntax errors, aliases,
 * anchors, tags, directives, merge keys, keys that are not plainly strings, deep nesting, very
 * long keys), and file-outcome.ts reads the file again with `yaml` whenever a document has an
 * issue or a warning or any check asks for a position. So a file read here yields exactly what
 * the full reader yields (test/unit/fast-yaml.test.ts compares the two on every fixture and on
 * thousands of mutations of them). Pure.
 */
import { constructFromEvents, CORE_SCHEMA, EVENT_ID, parseEvents, SCALAR_STYLE, type Event } from 'js-yaml';

export interface FastDocument {
  /** The document's data (never null: empty documents are skipped, as the full reader skips them). */
  data: unknown;
  /** Offset of its root node in the text (what the full reader reports as the document's start). */
  offset: number;
}

/** yaml rejects an implicit key longer than 1024 characters; js-yaml may not: the full reader decides. */
const MAX_KEY_LENGTH = 1000;
/**
 * A plain key that both libraries certainly read as this very string: it starts with a letter or
 * `_` and is none of the core schema's null and boolean words (digits, `.inf`, `~`, `<<` and every
 * other spelling go to the full reader, whose toJS turns non-string keys into strings its own way).
 */
const PLAIN_STRING_KEY = /^[A-Za-z_][^\s]*$/;
const CORE_WORDS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

const { DOCUMENT, SEQUENCE, MAPPING, SCALAR, ALIAS, POP } = EVENT_ID;

/**
 * The documents of `text`, or undefined when the full reader must read it. Nesting at `maxDepth`
 * or deeper goes to the full reader too, which measures it exactly and names where.
 */
export function fastDocuments(text: string, maxDepth: number): FastDocument[] | undefined {
  // The own-property `__proto__` is where {}-based construction could differ from yaml's toJS.
  if (text.includes('__proto__')) return undefined;
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth: maxDepth + 2 });
  } catch {
    return undefined;
  }
  // What is open: the document (-1), then collections, each with the children it has had so far.
  const open: number[] = [];
  const roots: number[] = [];
  let collections = 0;
  for (const e of events) {
    if (e.type === POP) {
      if (open.pop()! >= 0) collections--;
      continue;
    }
    if (e.type === DOCUMENT) {
      if (e.directives.length > 0) return undefined;
      open.push(-1);
      roots.push(-1);
      continue;
    }
    if (e.type === ALIAS || e.anchorStart !== -1 || e.tagStart !== -1) return undefined;
    const parent = open.length - 1;
    const siblings = open[parent]!;
    if (siblings === -1) {
      // A scalar root is never a manifest, and its start is where the libraries differ (`--- |`).
      roots[roots.length - 1] = e.type === SCALAR ? -1 : e.start;
    } else {
      open[parent] = siblings + 1;
      if (isMappingKey(siblings + 1) && !isStringKey(text, e)) return undefined;
    }
    if (e.type === MAPPING || e.type === SEQUENCE) {
      if (++collections >= maxDepth) return undefined;
      open.push(e.type === MAPPING ? 0 : SEQUENCE_MARK);
    }
  }
  let data: unknown[];
  try {
    data = constructFromEvents(events, { source: text, schema: CORE_SCHEMA, maxAliases: 0 });
  } catch {
    return undefined;
  }
  if (data.length !== roots.length) return undefined;
  const docs: FastDocument[] = [];
  for (const [i, d] of data.entries()) {
    if (d === null || d === undefined) continue;
    if (roots[i] === -1) return undefined;
    docs.push({ data: d, offset: roots[i]! });
  }
  return docs;
}

/**
 * Child counts of sequences are offset by this, so that a sequence's children are never taken for
 * keys: a mapping's count starts at 0, a sequence's here (collections cannot have 2^30 children).
 */
const SEQUENCE_MARK = 2 ** 30;

/** Whether the `count`th child (1-based) of a collection is a key: the 1st, 3rd, ... child of a mapping. */
function isMappingKey(count: number): boolean {
  return count < SEQUENCE_MARK && count % 2 === 1;
}

function isStringKey(text: string, e: Event): boolean {
  if (e.type !== SCALAR) return false;
  if (e.valueStart === -1 || e.valueEnd - e.valueStart > MAX_KEY_LENGTH) return false;
  if (e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED) return true;
  if (e.style !== SCALAR_STYLE.PLAIN) return false;
  const source = text.slice(e.valueStart, e.valueEnd);
  return PLAIN_STRING_KEY.test(source) && !CORE_WORDS.has(source);
}
