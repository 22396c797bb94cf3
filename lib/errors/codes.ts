/**
 * Every error code Gantry uses, each with the HTTP status the API answers it with, its handling
 * policy and one line saying what it means. A code used anywhere must be listed here: `ErrorCode`
 * is derived from this object's keys, and GantryError takes only an ErrorCode. docs/errors.md
 * lists the same codes, and test/unit/error-codes.test.ts fails when the two drift apart.
 *
 * Policies (as Flux's typed errors): `stalled` needs a user fix and is not retried; `waiting` is
 * not a failure, only "look again later"; `transient` is retried with backoff. Codes that never
 * reach the API (manifest, agent and CLI errors) still have the status that fits them best.
 */

export type ErrorPolicy = 'stalled' | 'waiting' | 'transient';

export interface ErrorCodeEntry<C extends string = string> {
  /** The key of the entry, repeated: the catalog is checked (by the compiler and a test) to agree. */
  code: C;
  status: number;
  policy: ErrorPolicy;
  description: string;
}

/** Makes the compiler check that each entry's `code` is its key, keeping literal types. */
function defineCatalog<const T extends { [K in keyof T]: ErrorCodeEntry<K & string> }>(catalog: T): Readonly<T> {
  return Object.freeze(catalog);
}

export const ERROR_CODES = defineCatalog({
  // -- any side ---------------------------------------------------------------------------------
  INTERNAL: { code: 'INTERNAL', status: 500, policy: 'transient', description: 'an unexpected error; the API answers only "internal error" and the reconciler logs the rest' },
  CONFLICT: { code: 'CONFLICT', status: 409, policy: 'transient', description: 'the object kept changing under a concurrent update (a compare-and-set lost); try again' },
  FORBIDDEN: { code: 'FORBIDDEN', status: 403, policy: 'stalled', description: 'the API token is valid but its role may not do this (a read token on an admin route)' },
  STOPPED: { code: 'STOPPED', status: 503, policy: 'transient', description: 'the component is shutting down and takes no more work (a run asked of a stopped runner)' },

  // -- API requests -----------------------------------------------------------------------------
  NOT_FOUND: { code: 'NOT_FOUND', status: 404, policy: 'stalled', description: 'the deployment, node, instance, preview or action named in the request does not exist' },
  INVALID_NAME: { code: 'INVALID_NAME', status: 400, policy: 'stalled', description: 'a namespace, name or node name in the request is not a DNS label' },
  INVALID_ID: { code: 'INVALID_ID', status: 400, policy: 'stalled', description: 'the instance id in the request is malformed' },
  INVALID_TAIL: { code: 'INVALID_TAIL', status: 400, policy: 'stalled', description: 'the logs `tail` parameter is not a non-negative integer' },
  INVALID_GRACE_PERIOD: { code: 'INVALID_GRACE_PERIOD', status: 400, policy: 'stalled', description: 'a delete\'s `gracePeriod` is not a whole number of seconds, or is 0 without `force`' },
  INVALID_REVISION: { code: 'INVALID_REVISION', status: 400, policy: 'stalled', description: '`toRevision` is not a positive integer' },
  NOT_PLACED: { code: 'NOT_PLACED', status: 409, policy: 'waiting', description: 'the instance is not placed on a node yet, so it has no logs; ask again once it is' },
  NODE_UNAVAILABLE: { code: 'NODE_UNAVAILABLE', status: 503, policy: 'transient', description: "the instance's node does not serve logs (its agent is down or too old)" },
  NODE_UNREACHABLE: { code: 'NODE_UNREACHABLE', status: 502, policy: 'transient', description: "the instance's node did not answer the logs request" },
  FETCH_RATE_LIMITED: { code: 'FETCH_RATE_LIMITED', status: 429, policy: 'waiting', description: 'too many fetches of refs the reconciler does not know yet (`GET /api/v1/plan?ref=`); try again after the seconds the error names' },

  // -- rollout commands -------------------------------------------------------------------------
  NO_ROLLOUT: { code: 'NO_ROLLOUT', status: 409, policy: 'waiting', description: 'the deployment has no rollout state yet (its first reconcile has not run)' },
  NOT_PROGRESSING: { code: 'NOT_PROGRESSING', status: 409, policy: 'stalled', description: 'promote or abort of a rollout that is not progressing' },
  NO_STABLE_REVISION: { code: 'NO_STABLE_REVISION', status: 409, policy: 'stalled', description: 'abort with no stable revision to return to' },
  NO_EARLIER_REVISION: { code: 'NO_EARLIER_REVISION', status: 409, policy: 'stalled', description: 'undo without --to-revision, and no revision older than the current one' },
  NO_SUCH_REVISION: { code: 'NO_SUCH_REVISION', status: 404, policy: 'stalled', description: 'undo --to-revision names a revision that is not in the history' },

  // -- webhooks ---------------------------------------------------------------------------------
  WEBHOOKS_DISABLED: { code: 'WEBHOOKS_DISABLED', status: 503, policy: 'stalled', description: "the webhook secret's environment variable is not set, so deliveries are refused" },
  UNAUTHORIZED: { code: 'UNAUTHORIZED', status: 401, policy: 'stalled', description: 'no valid credential: an API request without a known bearer token, or a webhook delivery with a missing or wrong signature' },
  MALFORMED_PAYLOAD: { code: 'MALFORMED_PAYLOAD', status: 400, policy: 'stalled', description: 'the webhook body is not the JSON its event promises' },

  // -- Git sources (GitSourceError) ---------------------------------------------------------------
  NOT_A_REPOSITORY: { code: 'NOT_A_REPOSITORY', status: 502, policy: 'stalled', description: 'the configured path or URL is not a Git repository (or not a smart HTTP endpoint)' },
  BRANCH_NOT_FOUND: { code: 'BRANCH_NOT_FOUND', status: 404, policy: 'stalled', description: 'the branch or ref does not exist in the repository' },
  COMMIT_NOT_FOUND: { code: 'COMMIT_NOT_FOUND', status: 404, policy: 'stalled', description: 'the commit sha does not exist in the repository' },
  SUBPATH_NOT_FOUND: { code: 'SUBPATH_NOT_FOUND', status: 502, policy: 'stalled', description: 'the manifests sub-path is not a directory at that commit' },
  INVALID_CONFIG: { code: 'INVALID_CONFIG', status: 400, policy: 'stalled', description: 'an invalid source setting or ref (empty branch, `a..b`, a sub-path outside the repository)' },
  AUTH_FAILED: { code: 'AUTH_FAILED', status: 502, policy: 'stalled', description: 'the Git server refused the credentials (or asked for some)' },
  FETCH_FAILED: { code: 'FETCH_FAILED', status: 502, policy: 'transient', description: 'fetching from the Git server failed (network, HTTP error)' },
  READ_FAILED: { code: 'READ_FAILED', status: 502, policy: 'transient', description: 'reading refs, trees or blobs of the repository failed' },
  FETCH_TOO_LARGE: { code: 'FETCH_TOO_LARGE', status: 422, policy: 'stalled', description: 'a fetch brought an object larger than the limit per object (declared, inflated or as a delta result), or a pack past the size or object-count limit; it was stopped and nothing of it kept' },
  COMMIT_TOO_LARGE: { code: 'COMMIT_TOO_LARGE', status: 422, policy: 'stalled', description: 'the commit has more manifest files, bytes, tree entries or directory levels than the limits; it is rejected whole' },

  // -- manifests (ManifestError: collected, not thrown) -------------------------------------------
  YAML_SYNTAX: { code: 'YAML_SYNTAX', status: 422, policy: 'stalled', description: 'the file is not valid YAML (or JSON), or not valid UTF-8' },
  SCHEMA: { code: 'SCHEMA', status: 422, policy: 'stalled', description: 'the document does not match the schema of its kind' },
  UNKNOWN_KIND: { code: 'UNKNOWN_KIND', status: 422, policy: 'stalled', description: 'the document has no kind, or one Kubernetes does not define (a typo, a custom resource)' },
  UNKNOWN_API_VERSION: { code: 'UNKNOWN_API_VERSION', status: 422, policy: 'stalled', description: 'the document has no apiVersion, or one Kubernetes does not define for its kind' },
  DUPLICATE: { code: 'DUPLICATE', status: 422, policy: 'stalled', description: 'another document defines an object of the same kind, namespace and name' },
  REFERENCE_NOT_FOUND: { code: 'REFERENCE_NOT_FOUND', status: 422, policy: 'stalled', description: 'an env var or envFrom names a ConfigMap, Secret or key that the commit does not define, and is not optional' },
  FILE_TOO_LARGE: { code: 'FILE_TOO_LARGE', status: 422, policy: 'stalled', description: 'the manifest file is larger than the size limit' },
  ALIAS_LIMIT: { code: 'ALIAS_LIMIT', status: 422, policy: 'stalled', description: 'too many YAML aliases, or aliases that expand too much (a "billion laughs" document)' },
  NESTING_TOO_DEEP: { code: 'NESTING_TOO_DEEP', status: 422, policy: 'stalled', description: 'collections nest deeper than the limit (64 levels) in a document' },
  NAMESPACE_NOT_DECLARED: { code: 'NAMESPACE_NOT_DECLARED', status: 422, policy: 'stalled', description: 'the object is in a namespace no Namespace manifest declares' },
  INVALID_VALUE: { code: 'INVALID_VALUE', status: 422, policy: 'stalled', description: 'a value the schema accepts but that is still wrong (quantities, selector, uniqueness...)' },

  // -- Git host reporting (GitHostError) ----------------------------------------------------------
  GIT_HOST_NOT_CONFIGURED: { code: 'GIT_HOST_NOT_CONFIGURED', status: 503, policy: 'stalled', description: 'reporting to the Git host lacks its API URL or its token' },
  GIT_HOST_UNREACHABLE: { code: 'GIT_HOST_UNREACHABLE', status: 502, policy: 'transient', description: "the Git host's API did not answer, or answered 429 or 5xx" },
  GIT_HOST_REJECTED: { code: 'GIT_HOST_REJECTED', status: 502, policy: 'stalled', description: "the Git host's API refused the request (bad token, no permission, invalid request)" },
  GIT_HOST_NOT_FOUND: { code: 'GIT_HOST_NOT_FOUND', status: 502, policy: 'stalled', description: 'the repository, commit or pull request is not known to the Git host' },
  GIT_HOST_BAD_RESPONSE: { code: 'GIT_HOST_BAD_RESPONSE', status: 502, policy: 'transient', description: "the Git host's answer lacks what Gantry needs from it (an id)" },

  // -- agents (StartError) ------------------------------------------------------------------------
  IMAGE_PULL_FAILED: { code: 'IMAGE_PULL_FAILED', status: 502, policy: 'transient', description: 'the container image could not be pulled; retried with backoff, not counted as a restart' },
  IMAGE_NEVER_PULL: { code: 'IMAGE_NEVER_PULL', status: 409, policy: 'transient', description: 'the image is not on the node and imagePullPolicy is Never; retried in case it is loaded' },
  RUNTIME_UNAVAILABLE: { code: 'RUNTIME_UNAVAILABLE', status: 503, policy: 'transient', description: 'the container engine does not answer (or the node has none); retried with backoff' },
  CREATE_CONTAINER_CONFIG_ERROR: { code: 'CREATE_CONTAINER_CONFIG_ERROR', status: 409, policy: 'transient', description: "the container's env refers to a ConfigMap or Secret version or key that is not there (or Redis did not answer); retried with backoff, not counted as a restart" },
  HOST_PORT_IN_USE: { code: 'HOST_PORT_IN_USE', status: 409, policy: 'transient', description: "a container port's hostPort is held by something else on the node; retried with backoff, not counted as a restart" },
  HOST_IP_NOT_ON_NODE: { code: 'HOST_IP_NOT_ON_NODE', status: 409, policy: 'transient', description: "a container port's hostIP is not an address of the node; retried with backoff in case it is added" },
  START_FAILED: { code: 'START_FAILED', status: 500, policy: 'transient', description: 'the container could not be created or started; counts as a failed run for the restart policy' },

  // -- CLI (ApiError) -----------------------------------------------------------------------------
  API_UNREACHABLE: { code: 'API_UNREACHABLE', status: 503, policy: 'transient', description: "the CLI cannot reach the reconciler's API (not running, wrong --api)" },
  API_REQUEST_FAILED: { code: 'API_REQUEST_FAILED', status: 502, policy: 'stalled', description: "the reconciler's API answered the CLI with an error; the error keeps its status and code" },
});

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes whose catalog policy is P: what StalledError, WaitingError and TransientError accept. */
export type CodeWithPolicy<P extends ErrorPolicy> = { [K in ErrorCode]: (typeof ERROR_CODES)[K]['policy'] extends P ? K : never }[ErrorCode];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The catalog entry of a code; undefined for one that is not Gantry's (a deserialized foreign error). */
export function errorCodeEntry(code: string): ErrorCodeEntry | undefined {
  return isErrorCode(code) ? ERROR_CODES[code] : undefined;
}
