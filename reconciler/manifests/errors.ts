/**
 * One problem found in the manifests of a repository, located precisely enough for an editor to
 * jump to it. These are collected, not thrown: one bad document never hides problems in others.
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
  | 'NAMESPACE_NOT_DECLARED'
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

export class ManifestError {
  readonly code: ManifestErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  // `declare`: optional fields stay absent (not own properties set to undefined) when unknown.
  declare readonly kind?: string;
  declare readonly namespace?: string;
  declare readonly name?: string;
  declare readonly pointer?: string;
  readonly message: string;

  constructor(init: ManifestErrorInit) {
    this.code = init.code;
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    if (init.kind !== undefined) this.kind = init.kind;
    if (init.namespace !== undefined) this.namespace = init.namespace;
    if (init.name !== undefined) this.name = init.name;
    if (init.pointer) this.pointer = init.pointer;
    this.message = init.message;
  }

  /** The object the error is about, as shown to users: "default/web", or "team-a" for a Namespace. */
  get object(): string | undefined {
    if (this.name === undefined) return undefined;
    return this.kind === 'Namespace' || this.namespace === undefined ? this.name : `${this.namespace}/${this.name}`;
  }

  /** Exactly one line: `apps/web.yaml:12:7 Deployment default/web /spec/replicas: must be integer`. */
  toString(): string {
    const parts = [`${this.file}:${this.line}:${this.column}`];
    if (this.kind !== undefined) parts.push(this.kind);
    const object = this.object;
    if (object !== undefined) parts.push(object);
    if (this.pointer) parts.push(this.pointer);
    return oneLine(`${parts.join(' ')}: ${this.message}`);
  }

  toJSON(): ManifestErrorJSON {
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
    if (this.name !== undefined) json.name = this.name;
    if (this.pointer !== undefined) json.pointer = this.pointer;
    return json;
  }
}
