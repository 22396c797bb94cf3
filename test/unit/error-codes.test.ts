import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { errorCodes as fastifyErrors } from 'fastify';
import { ERROR_CODES, GantryError, StalledError, TransientError, WaitingError, type ErrorCode, type ErrorPolicy } from '../../lib/errors/index.ts';
import { GitSourceError } from '../../reconciler/git/errors.ts';
import { ManifestError, type ManifestErrorJSON } from '../../reconciler/manifests/errors.ts';
import { RolloutCommandError } from '../../reconciler/rollout/rollout-commands.ts';
import { GitHostError } from '../../reconciler/git-host/git-host-client.ts';
import { MalformedPayload } from '../../reconciler/webhooks/webhook-event.ts';
import { HttpError, httpErrorOf } from '../../reconciler/api/http-error.ts';
import { ApiError } from '../../cli/api-client.ts';
import { StartError } from '../../agents/container-runtime.ts';

/**
 * The error catalog (lib/errors/codes.ts), as fastify's errors test: every code with its status,
 * each key equal to its code, the docs listing exactly these codes, and the API's mapping of each
 * error class to HTTP.
 */

// Adding or removing a code means changing this table (and docs/errors.md) on purpose.
const STATUS: Record<ErrorCode, number> = {
  INTERNAL: 500,
  CONFLICT: 409,
  STOPPED: 503,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_NAME: 400,
  INVALID_ID: 400,
  INVALID_TAIL: 400,
  INVALID_GRACE_PERIOD: 400,
  INVALID_REVISION: 400,
  NOT_PLACED: 409,
  NODE_UNAVAILABLE: 503,
  NODE_UNREACHABLE: 502,
  FETCH_RATE_LIMITED: 429,
  NO_ROLLOUT: 409,
  NOT_PROGRESSING: 409,
  NO_STABLE_REVISION: 409,
  NO_EARLIER_REVISION: 409,
  NO_SUCH_REVISION: 404,
  WEBHOOKS_DISABLED: 503,
  UNAUTHORIZED: 401,
  MALFORMED_PAYLOAD: 400,
  NOT_A_REPOSITORY: 502,
  BRANCH_NOT_FOUND: 404,
  COMMIT_NOT_FOUND: 404,
  SUBPATH_NOT_FOUND: 502,
  INVALID_CONFIG: 400,
  AUTH_FAILED: 502,
  FETCH_FAILED: 502,
  READ_FAILED: 502,
  COMMIT_TOO_LARGE: 422,
  FETCH_TOO_LARGE: 422,
  REFERENCE_NOT_FOUND: 422,
  YAML_SYNTAX: 422,
  SCHEMA: 422,
  UNKNOWN_KIND: 422,
  UNKNOWN_API_VERSION: 422,
  DUPLICATE: 422,
  FILE_TOO_LARGE: 422,
  ALIAS_LIMIT: 422,
  NESTING_TOO_DEEP: 422,
  NAMESPACE_NOT_DECLARED: 422,
  INVALID_VALUE: 422,
  GIT_HOST_NOT_CONFIGURED: 503,
  GIT_HOST_UNREACHABLE: 502,
  GIT_HOST_REJECTED: 502,
  GIT_HOST_NOT_FOUND: 502,
  GIT_HOST_BAD_RESPONSE: 502,
  IMAGE_PULL_FAILED: 502,
  IMAGE_NEVER_PULL: 409,
  RUNTIME_UNAVAILABLE: 503,
  CREATE_CONTAINER_CONFIG_ERROR: 409,
  HOST_PORT_IN_USE: 409,
  HOST_IP_NOT_ON_NODE: 409,
  START_FAILED: 500,
  API_UNREACHABLE: 503,
  API_REQUEST_FAILED: 502,
};

const catalog = Object.values(ERROR_CODES);

test('the catalog has exactly the codes of the table, each with its status', () => {
  assert.deepEqual(Object.keys(ERROR_CODES).sort(), Object.keys(STATUS).sort());
  assert.equal(catalog.length, Object.keys(STATUS).length);
  for (const [code, status] of Object.entries(STATUS)) assert.equal(ERROR_CODES[code as ErrorCode].status, status, code);
});

test('each catalog key equals its code; every entry has a policy and a one-line description', () => {
  for (const [key, entry] of Object.entries(ERROR_CODES)) {
    assert.equal(entry.code, key);
    assert.match(key, /^[A-Z][A-Z_]*[A-Z]$/);
    assert.ok(['stalled', 'waiting', 'transient'].includes(entry.policy), key);
    assert.ok(entry.status >= 400 && entry.status <= 599, key);
    assert.ok(entry.description.length > 10 && !entry.description.includes('\n'), key);
  }
});

test('docs/errors.md lists exactly the catalog codes, with their status and policy, both ways', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (\w+) \| (.+) \|$/gm)].map((m) => ({ code: m[1]!, status: Number(m[2]), policy: m[3]! }));
  const documented = rows.map((r) => r.code);
  assert.equal(new Set(documented).size, documented.length, 'a code is documented twice');
  for (const code of Object.keys(ERROR_CODES)) assert.ok(documented.includes(code), `${code} is not in docs/errors.md`);
  for (const row of rows) {
    const entry = (ERROR_CODES as Record<string, { status: number; policy: ErrorPolicy }>)[row.code];
    assert.ok(entry, `docs/errors.md lists ${row.code}, which the catalog lacks`);
    assert.deepEqual({ status: row.status, policy: row.policy }, { status: entry.status, policy: entry.policy }, row.code);
  }
});

const manifestError = () =>
  new ManifestError({ code: 'SCHEMA', file: 'apps/web.yaml', line: 6, column: 13, kind: 'Deployment', namespace: 'default', name: 'web', pointer: '/spec/replicas', message: 'must be integer' });

test('httpErrorOf: a GantryError gets its code catalog status and { error: message, code }', () => {
  const table: [GantryError, number][] = [
    [new GitSourceError('BRANCH_NOT_FOUND', 'ref "x" not found'), 404],
    [new GitSourceError('INVALID_CONFIG', 'invalid ref "a..b"'), 400],
    [new GitSourceError('AUTH_FAILED', 'authentication failed'), 502],
    [new RolloutCommandError('NO_SUCH_REVISION', 'revision 99 is not in the history'), 404],
    [new RolloutCommandError('NO_EARLIER_REVISION', 'no earlier revision to return to'), 409],
    [new RolloutCommandError('CONFLICT', 'the rollout kept changing; try again'), 409],
    [new HttpError('NOT_FOUND', 'node n1 not found'), 404],
    [new HttpError('NODE_UNREACHABLE', 'node n1 did not answer'), 502],
    [new HttpError('WEBHOOKS_DISABLED', 'webhooks are disabled'), 503],
    [new MalformedPayload('after must be a non-empty string'), 400],
    [new GitHostError('GIT_HOST_REJECTED', 'POST /x: HTTP 401', 401), 502],
    [manifestError(), 422],
    [new StartError('ImagePullFailed', 'ImagePullFailed: nope'), 502],
    [new ApiError('GET /x: not found', 404, 'NOT_FOUND'), 502],
    [new StalledError('INVALID_NAME', 'bad'), 400],
    [new WaitingError('NO_ROLLOUT', 'no rollout yet', 1_000), 409],
    [new TransientError('CONFLICT', 'raced'), 409],
    [new GantryError('UNAUTHORIZED', 'missing or invalid webhook signature'), 401],
  ];
  for (const [err, status] of table) {
    assert.deepEqual(httpErrorOf(err), { status, body: { error: err.message, code: err.code } }, `${err.name} ${err.code}`);
    assert.equal(err.httpStatus, status);
  }
});

test("httpErrorOf: fastify's own request errors keep their status and code", () => {
  const table: [Error & { code: string }, number][] = [
    [new fastifyErrors.FST_ERR_CTP_INVALID_JSON_BODY(), 400],
    [new fastifyErrors.FST_ERR_CTP_EMPTY_JSON_BODY(), 400],
    [new fastifyErrors.FST_ERR_CTP_BODY_TOO_LARGE(), 413],
    [new fastifyErrors.FST_ERR_CTP_INVALID_MEDIA_TYPE(), 415],
  ];
  for (const [err, status] of table) assert.deepEqual(httpErrorOf(err), { status, body: { error: err.message, code: err.code } }, err.code);
  // A schema validation error, as fastify builds it.
  const validation = Object.assign(new Error('body/toRevision must be integer'), { statusCode: 400, code: 'FST_ERR_VALIDATION', validation: [{ instancePath: '/toRevision' }] });
  assert.deepEqual(httpErrorOf(validation), { status: 400, body: { error: 'body/toRevision must be integer', code: 'FST_ERR_VALIDATION' } });
});

test('httpErrorOf: anything else is 500 INTERNAL, without its message', () => {
  const internal = { status: 500, body: { error: 'internal error', code: 'INTERNAL' } };
  const secret = 'https://user:hunter2@git.example.com/repo.git';
  const table: unknown[] = [
    new Error(`cannot fetch ${secret}`),
    new TypeError(`x is undefined (${secret})`),
    // A 4xx status without a fastify code is not fastify's: a library error could carry one.
    Object.assign(new Error(`aborted ${secret}`), { statusCode: 400, code: 'ECONNRESET' }),
    // fastify's own 5xx errors are internal errors too.
    new fastifyErrors.FST_ERR_REP_INVALID_PAYLOAD_TYPE(secret),
    Object.assign(new Error(secret), { statusCode: 404 }),
    `a thrown string ${secret}`,
    undefined,
    null,
    { message: secret, statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }, // not an Error
  ];
  for (const err of table) {
    const reply = httpErrorOf(err);
    assert.deepEqual(reply, internal);
    assert.doesNotMatch(JSON.stringify(reply), /hunter2/);
  }
  // The reply is a fresh object each time: a handler cannot corrupt the next one.
  const a = httpErrorOf(new Error('x'));
  a.body.error = 'changed';
  assert.deepEqual(httpErrorOf(new Error('y')), internal);
});

test('every error class is a GantryError and an Error, named on its prototype so stacks read right', () => {
  const table: [GantryError, string, ErrorPolicy][] = [
    [new GantryError('INTERNAL', 'm'), 'GantryError', 'transient'],
    [new StalledError('SCHEMA', 'm'), 'StalledError', 'stalled'],
    [new WaitingError('NOT_PLACED', 'm', 10), 'WaitingError', 'waiting'],
    [new TransientError('CONFLICT', 'm'), 'TransientError', 'transient'],
    [new GitSourceError('FETCH_FAILED', 'm'), 'GitSourceError', 'transient'],
    [new GitSourceError('NOT_A_REPOSITORY', 'm'), 'GitSourceError', 'stalled'],
    [manifestError(), 'ManifestError', 'stalled'],
    [new RolloutCommandError('NOT_PROGRESSING', 'm'), 'RolloutCommandError', 'stalled'],
    [new GitHostError('GIT_HOST_UNREACHABLE', 'm'), 'GitHostError', 'transient'],
    [new MalformedPayload('m'), 'MalformedPayload', 'stalled'],
    [new HttpError('NOT_PLACED', 'm'), 'HttpError', 'waiting'],
    [new ApiError('m'), 'ApiError', 'transient'],
    [new StartError('StartFailed', 'm'), 'StartError', 'transient'],
  ];
  for (const [err, name, policy] of table) {
    assert.ok(err instanceof GantryError && err instanceof Error, name);
    assert.equal(err.name, name);
    assert.equal(Object.hasOwn(err, 'name'), false, `${name}: name is on the prototype`);
    assert.ok(err.stack?.startsWith(`${name}: m`) || name === 'ManifestError', `${name}: ${err.stack?.split('\n')[0]}`);
    assert.equal(err.policy, policy, name);
    assert.equal(ERROR_CODES[err.code].policy, policy, `${name}: the class and its code's catalog entry agree`);
  }
  assert.ok(manifestError().stack?.startsWith('ManifestError: must be integer'));
});

test('toJSON is { name, code, message, data }, and fromJSON brings back the same class', () => {
  const table: GantryError[] = [
    new GantryError('INTERNAL', 'something broke', { where: 'x' }),
    new StalledError('SCHEMA', 'fix it'),
    new WaitingError('NO_ROLLOUT', 'not yet', 2_500, { deployment: 'default/web' }),
    new TransientError('CONFLICT', 'raced', { attempt: 3 }),
    new GitSourceError('AUTH_FAILED', 'authentication failed for https://***@host/r.git', { status: 401, hint: 'set $GANTRY_GIT_TOKEN' }),
    new RolloutCommandError('NO_SUCH_REVISION', 'revision 99 is not in the history', { revision: 99 }),
    new GitHostError('GIT_HOST_NOT_FOUND', 'pull request #7 of acme/shop not found', 404),
    new MalformedPayload('after must be a non-empty string'),
    new HttpError('NOT_FOUND', 'node n1 not found'),
    new ApiError('GET /api/v1/x: nope', 409, 'NO_ROLLOUT'),
    new StartError('ErrImageNeverPull', 'ErrImageNeverPull: image x is not present'),
  ];
  for (const err of table) {
    const json = JSON.parse(JSON.stringify(err)) as ReturnType<GantryError['toJSON']>;
    assert.deepEqual(json, { name: err.name, code: err.code, message: err.message, data: err.data });
    const back = GantryError.fromJSON(json);
    assert.equal(Object.getPrototypeOf(back), Object.getPrototypeOf(err), err.name);
    assert.ok(back instanceof Error);
    assert.deepEqual([back.name, back.code, back.message, back.data, back.policy, back.httpStatus], [err.name, err.code, err.message, err.data, err.policy, err.httpStatus]);
    assert.deepEqual(back.toJSON(), json);
    assert.ok(back.stack?.startsWith(`${err.name}: ${err.message}`));
  }
  // What a class derives comes back with it.
  const waiting = GantryError.fromJSON(new WaitingError('NOT_PLACED', 'x', 2_500).toJSON());
  assert.ok(waiting instanceof WaitingError && waiting.requeueAfterMs === 2_500);
  const host = GantryError.fromJSON(new GitHostError('GIT_HOST_REJECTED', 'x', 403).toJSON());
  assert.ok(host instanceof GitHostError && host.status === 403);
  const api = GantryError.fromJSON(new ApiError('x', 404, 'NOT_FOUND').toJSON());
  assert.ok(api instanceof ApiError && api.status === 404 && api.serverCode === 'NOT_FOUND' && api.code === 'API_REQUEST_FAILED');
  const start = GantryError.fromJSON(new StartError('RuntimeUnavailable', 'x').toJSON());
  assert.ok(start instanceof StartError && start.reason === 'RuntimeUnavailable' && start.waiting && start.code === 'RUNTIME_UNAVAILABLE');
});

test('fromJSON of an unknown class or code: a GantryError keeping the code, policy transient, status 500', () => {
  const back = GantryError.fromJSON({ name: 'FutureError', code: 'SOMETHING_NEW', message: 'from a newer version', data: { a: 1 } });
  assert.equal(back.constructor, GantryError);
  assert.deepEqual([back.code as string, back.message, back.data, back.policy, back.httpStatus], ['SOMETHING_NEW', 'from a newer version', { a: 1 }, 'transient', 500]);
  assert.deepEqual(GantryError.fromJSON({ code: 'CONFLICT', message: 'm', data: [1] as unknown as Record<string, unknown> }).data, {});
});

test('ManifestError keeps its own JSON and one-line text, and round-trips through them', () => {
  const err = manifestError();
  const json: ManifestErrorJSON = {
    code: 'SCHEMA',
    file: 'apps/web.yaml',
    line: 6,
    column: 13,
    kind: 'Deployment',
    namespace: 'default',
    name: 'web',
    pointer: '/spec/replicas',
    message: 'must be integer',
    text: 'apps/web.yaml:6:13 Deployment default/web /spec/replicas: must be integer',
  };
  assert.deepEqual(JSON.parse(JSON.stringify(err)), json);
  assert.equal(String(err), json.text);
  assert.equal(err.object, 'default/web');
  assert.equal(err.objectName, 'web');
  assert.deepEqual(err.data, { file: 'apps/web.yaml', line: 6, column: 13, kind: 'Deployment', namespace: 'default', name: 'web', pointer: '/spec/replicas' });
  const back = ManifestError.fromJSON(json);
  assert.ok(back instanceof ManifestError);
  assert.deepEqual(back.toJSON(), json);
  // Without an object: no name in the JSON, and the text has no object.
  const bare = new ManifestError({ code: 'YAML_SYNTAX', file: 'a.yaml', line: 1, column: 1, message: 'file is not valid UTF-8 text' });
  assert.deepEqual(bare.toJSON(), { code: 'YAML_SYNTAX', file: 'a.yaml', line: 1, column: 1, message: 'file is not valid UTF-8 text', text: 'a.yaml:1:1: file is not valid UTF-8 text' });
  assert.equal(bare.object, undefined);
});
