/**
 * What the loader accepts but wants the user to know: a Kubernetes object or field Gantry does not
 * run (yet), an object skipped on request, a deprecated apiVersion. Located like a ManifestError
 * (file:line:col, object, pointer) and printed the same way, but never a reason to reject a commit.
 */
import { locatedText, objectText } from './errors.ts';

export type ManifestWarningCode =
  /** A kind Kubernetes defines that Gantry does not run (ServiceAccount, Ingress, ...): listed, not applied. */
  | 'IGNORED_KIND'
  /** A field Kubernetes defines that Gantry does not honour (affinity, securityContext, ...): dropped. */
  | 'IGNORED_FIELD'
  /** An object annotated gantry.dev/skip: "true", or a file listed in .gantryignore: not read. */
  | 'SKIPPED'
  /** apiVersion gantry.dev/v1: read as the Kubernetes apiVersion of its kind. */
  | 'DEPRECATED_API_VERSION'
  /** A hostPath volume: honoured, but what it holds is the node's, not the instance's. */
  | 'NODE_LOCAL';

export interface ManifestWarningJSON {
  code: ManifestWarningCode;
  file: string;
  line: number;
  column: number;
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  pointer?: string;
  message: string;
  /** The one-line form, as `gantry validate` prints it. */
  text: string;
}

export class ManifestWarning {
  readonly code: ManifestWarningCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly pointer?: string;
  readonly message: string;

  constructor(init: Omit<ManifestWarningJSON, 'text'>) {
    this.code = init.code;
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    this.message = init.message;
    if (init.apiVersion !== undefined) this.apiVersion = init.apiVersion;
    if (init.kind !== undefined) this.kind = init.kind;
    if (init.namespace !== undefined) this.namespace = init.namespace;
    if (init.name !== undefined) this.name = init.name;
    if (init.pointer) this.pointer = init.pointer;
  }

  get object(): string | undefined {
    return objectText(this.kind, this.namespace, this.name);
  }

  /** `apps/sa.yaml:1:1 ServiceAccount default/web: ignored: ...`, one line. */
  toString(): string {
    return locatedText(this, this.object);
  }

  toJSON(): ManifestWarningJSON {
    const { code, file, line, column, apiVersion, kind, namespace, name, pointer, message } = this;
    return {
      code,
      file,
      line,
      column,
      ...(apiVersion !== undefined ? { apiVersion } : {}),
      ...(kind !== undefined ? { kind } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(pointer !== undefined ? { pointer } : {}),
      message,
      text: this.toString(),
    };
  }
}
