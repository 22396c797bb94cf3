import { GantryError, registerErrorClass } from '../../lib/errors/index.ts';

/**
 * One problem found in the manifests of a repository, located precisely enough for an editor to
 * jump to it. These are collected, not thrown: one bad document never hides problems in others.
 * A GantryError all the same (code, data, policy `stalled`: a new commit must fix it).
 */

export type ManifestErrorCode =
  /** The file is not valid YAML (or JSON), or not valid UTF-8. */
  | 'YAML_SYNTAX'
  /** The document does not match the schema of its kind. */
  | 'SCHEMA'
  | 'UNKNOWN_KIND'
  | 'UNKNOWN_API_VERSION'
  /** Another document defines an object of the same kind, namespace and name. */
  | 'DUPLICATE'
  | 'FILE_TOO_LARGE'
  /** Too many YAML aliases, or aliases that expand too much (a "billion laughs" document). */
  | 'ALIAS_LIMIT'
  /** Collections nested deeper than the limit (a `[[[[...]]]]` document). */
  | 'NESTING_TOO_DEEP'
  | 'NAMESPACE_NOT_DECLARED'
  /** An env var or envFrom names a ConfigMap, Secret or key the commit does not have (and is not optional). */
  | 'REFERENCE_NOT_FOUND'
  /** A value the schema accepts but that is still wrong (quantities, selector, uniqueness...). */
  | 'INVALID_VALUE';

export interface ManifestErrorInit {
  code: ManifestErrorCode;
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  kind?: string;
  namespace?: string;
  name?: string;
  /** JSON pointer into the document, such as /spec/replicas; omitted for the whole document. */
  pointer?: string;
  message: string;
}

/** The JSON form of a ManifestError, with its one-line text. */
export interface ManifestErrorJSON extends ManifestErrorInit {
  text: string;
}

// Control and line-separator characters would break the one-line contract of toString().
const UNPRINTABLE = /[\u0000-\u001f\u007f\u2028\u2029]/g;

function oneLine(text: string): string {
  return text.replace(UNPRINTABLE, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** `file:line:col Kind object /pointer: message`, on one line: errors and warnings alike. */
export function locatedText(
  at: { file: string; line: number; column: number; kind?: string; pointer?: string; message: string },
  object: string | undefined,
): string {
  const parts = [`${at.file}:${at.line}:${at.column}`];
  if (at.kind !== undefined) parts.push(at.kind);
  if (object !== undefined) parts.push(object);
  if (at.pointer) parts.push(at.pointer);
  return oneLine(`${parts.join(' ')}: ${at.message}`);
}

/** "default/web", or "team-a" for a Namespace (and cluster-scoped kinds). */
export function objectText(kind: string | undefined, namespace: string | undefined, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  return kind === 'Namespace' || namespace === undefined ? name : `${namespace}/${name}`;
}

export class ManifestError extends GantryError {
  declare readonly code: ManifestErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  // `declare`: optional fields stay absent (not own properties set to undefined) when unknown.
  declare readonly kind?: string;
  declare readonly namespace?: string;
  /** The object's metadata.name (`name` is the error's class name, as on every Error). */
  declare readonly objectName?: string;
  declare readonly pointer?: string;

  constructor(init: ManifestErrorInit) {
    const data: Record<string, unknown> = { file: init.file, line: init.line, column: init.column };
    if (init.kind !== undefined) data.kind = init.kind;
    if (init.namespace !== undefined) data.namespace = init.namespace;
    if (init.name !== undefined) data.name = init.name;
    if (init.pointer) data.pointer = init.pointer;
    super(init.code, init.message, data);
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    if (init.kind !== undefined) this.kind = init.kind;
    if (init.namespace !== undefined) this.namespace = init.namespace;
    if (init.name !== undefined) this.objectName = init.name;
    if (init.pointer) this.pointer = init.pointer;
  }

  /** The object the error is about, as shown to users: "default/web", or "team-a" for a Namespace. */
  get object(): string | undefined {
    return objectText(this.kind, this.namespace, this.objectName);
  }

  /** Exactly one line: `apps/web.yaml:12:7 Deployment default/web /spec/replicas: must be integer`. */
  override toString(): string {
    return locatedText(this, this.object);
  }

  // Its own shape (the fields flat, plus the one-line text), not GantryError's { name, code, message, data }.
  override toJSON(): ManifestErrorJSON {
    const json: ManifestErrorJSON = {
      code: this.code,
      file: this.file,
      line: this.line,
      column: this.column,
      message: this.message,
      text: this.toString(),
    };
    if (this.kind !== undefined) json.kind = this.kind;
    if (this.namespace !== undefined) json.namespace = this.namespace;
    if (this.objectName !== undefined) json.name = this.objectName;
    if (this.pointer !== undefined) json.pointer = this.pointer;
    return json;
  }

  /** The error its toJSON() described. */
  static override fromJSON(json: ManifestErrorJSON): ManifestError {
    return new ManifestError(json);
  }
}
registerErrorClass(ManifestError, 'ManifestError', { revive: false });
