import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';
import { diffObjects } from '../../reconciler/desired/object-diff.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import type { LifecycleSpec } from '../../state/records/instance.ts';

/**
 * Containers' lifecycle hooks (postStart, preStop) on the reconciler side: the handlers a manifest
 * may write, the errors at file:line:column, the tcpSocket warning, and the records. Pure.
 */

/** web.yaml: the container's `lifecycle:` on line 12, its hooks one per line from line 13. */
function web(hooks: string[], extra: string[] = []): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: { name: web }',
    'spec:',
    '  template:',
    '    metadata: { labels: { app: web } }',
    '    spec:',
    ...extra.map((e) => `      ${e}`),
    '      containers:',
    '        - name: main',
    '          command: [sleep, "1000"]',
    '          ports: [{ name: http, containerPort: 8080 }]',
    ...(hooks.length > 0 ? ['          lifecycle:', ...hooks.map((h) => `            ${h}`)] : []),
    '',
  ].join('\n');
}

const load = (text: string) => loadManifests([{ path: 'web.yaml', content: text }]);

function record(text: string): DeploymentRecord {
  const loaded = load(text);
  assert.deepEqual(loaded.errors.map(String), []);
  return buildDesiredState(loaded.objects, 'c1', []).deployments[0]!;
}

/** `web.yaml:L:C Deployment default/web POINTER: MESSAGE` at the first `token` of the line holding `line`. */
function located(text: string, line: string, token: string, pointer: string, message: string): string {
  const lines = text.split('\n');
  const n = lines.findIndex((l) => l.includes(line));
  const column = lines[n]!.indexOf(token) + 1;
  assert.ok(n >= 0 && column > 0, `${token} is on the line of ${line}`);
  return `web.yaml:${n + 1}:${column} Deployment default/web ${pointer}: ${message}`;
}

const L = '/spec/template/spec/containers/0/lifecycle';

test('records: each action, ports resolved by name as for probes; tcpSocket-only handlers and no hooks are not recorded', () => {
  const cases: [string, string[], LifecycleSpec | undefined][] = [
    ['exec', ['preStop: { exec: { command: [sh, -c, "nginx -s quit"] } }'], { preStop: { exec: { command: ['sh', '-c', 'nginx -s quit'] } } }],
    ['httpGet by port name, path given a slash', ['postStart: { httpGet: { port: http, path: warm } }'], { postStart: { httpGet: { path: '/warm', port: 8080 } } }],
    ['httpGet with scheme, host and headers', ['preStop: { httpGet: { port: 9000, scheme: HTTPS, host: 10.0.0.1, httpHeaders: [{ name: X-Drain, value: "1" }] } }'], { preStop: { httpGet: { path: '/', port: 9000, scheme: 'HTTPS', host: '10.0.0.1', httpHeaders: [{ name: 'X-Drain', value: '1' }] } } }],
    ['sleep, zero allowed (Kubernetes 1.29)', ['preStop: { sleep: { seconds: 0 } }', 'postStart: { sleep: { seconds: 10 } }'], { postStart: { sleep: { seconds: 10 } }, preStop: { sleep: { seconds: 0 } } }],
    ['tcpSocket only: accepted, never run', ['preStop: { tcpSocket: { port: 8080 } }'], undefined],
    ['no lifecycle', [], undefined],
  ];
  for (const [name, hooks, expected] of cases) {
    const c = record(web(hooks)).template.containers[0]!;
    assert.deepEqual(c.lifecycle, expected, name);
    if (!expected) assert.ok(!('lifecycle' in c), `${name}: no key, so records and hashes stay as they were`);
  }
  assert.notEqual(record(web(['preStop: { tcpSocket: { port: 8080 } }'])).templateHash, record(web([])).templateHash, 'the manifest changed, so the template did');
});

test('errors at file:line:column: exactly one action, known port names, exec commands, sleeps within the grace period', () => {
  const cases: [string, string[], string[], [string, string, string, string][]][] = [
    ['no action', ['preStop: {}'], [], [['preStop', '{}', `${L}/preStop`, 'must have exactly one of exec, httpGet or sleep (has none)']]],
    ['two actions', ['postStart: { exec: { command: ["true"] }, sleep: { seconds: 1 } }'], [], [['postStart', '{', `${L}/postStart`, 'must have exactly one of exec, httpGet or sleep (has exec, sleep)']]],
    ['tcpSocket counts as an action (the API server rejects two)', ['preStop: { exec: { command: ["true"] }, tcpSocket: { port: 1 } }'], [], [['preStop', '{', `${L}/preStop`, 'must have exactly one of exec, httpGet or sleep (has exec, tcpSocket)']]],
    ['an unknown port name', ['postStart: { httpGet: { port: admin } }'], [], [['postStart', 'admin', `${L}/postStart/httpGet/port`, 'port "admin" is not the name of a port of container "main"']]],
    ['an empty exec command', ['preStop: { exec: { command: [] } }'], [], [['preStop', '[]', `${L}/preStop/exec/command`, 'must NOT have fewer than 1 items']]],
    ['a negative sleep', ['preStop: { sleep: { seconds: -1 } }'], [], [['preStop', '-1', `${L}/preStop/sleep/seconds`, 'must be >= 0']]],
    ['a sleep past the default grace period (10 s)', ['preStop: { sleep: { seconds: 11 } }'], [], [['preStop', '11', `${L}/preStop/sleep/seconds`, 'must be at most terminationGracePeriodSeconds (10): the container is killed when the grace period ends']]],
    ['a sleep past the written grace period', ['postStart: { sleep: { seconds: 31 } }'], ['terminationGracePeriodSeconds: 30'], [['postStart', '31', `${L}/postStart/sleep/seconds`, 'must be at most terminationGracePeriodSeconds (30): the container is killed when the grace period ends']]],
    ['a misspelled hook', ['preStart: { sleep: { seconds: 1 } }'], [], [['preStart', 'preStart', L, 'unknown field "preStart": Kubernetes does not define it here (did you mean "postStart"?)']]],
  ];
  for (const [name, hooks, extra, expected] of cases) {
    const text = web(hooks, extra);
    const errors = expected.map(([line, token, pointer, message]) => located(text, line, token, pointer, message));
    assert.deepEqual(load(text).errors.map(String), errors, name);
  }
  assert.deepEqual(load(web(['postStart: { sleep: { seconds: 30 } }'], ['terminationGracePeriodSeconds: 30'])).errors.map(String), []);
});

test('a tcpSocket handler warns at file:line (IGNORED_FIELD) and never rejects the commit', () => {
  const text = web(['preStop: { tcpSocket: { port: 8080 } }', 'postStart: { exec: { command: ["true"] } }']);
  const result = load(text);
  assert.deepEqual(result.errors.map(String), []);
  assert.deepEqual(
    result.warnings.map((w) => [w.code, String(w)]),
    [['IGNORED_FIELD', located(text, 'tcpSocket', 'tcpSocket', `${L}/preStop/tcpSocket`, 'ignored: a tcpSocket preStop hook is deprecated and never run by the kubelet; Gantry does not run it either (use exec, httpGet or sleep)')]],
  );
});

test('plans show hook changes field by field', () => {
  const row = (b: string[], a: string[]) => {
    const [before, after] = [record(web(b)), record(web(a))];
    return diffObjects({ namespaces: [], deployments: [before] }, { namespaces: [], deployments: [after] }).changed[0]!.changes.slice(1);
  };
  assert.deepEqual(row(['preStop: { sleep: { seconds: 2 } }'], ['preStop: { sleep: { seconds: 5 } }']), ['template.containers[0].lifecycle.preStop.sleep.seconds: 2 -> 5']);
  assert.deepEqual(row([], ['preStop: { sleep: { seconds: 5 } }']), ['template.containers[0].lifecycle: (none) -> {"preStop":{"sleep":{"seconds":5}}}']);
});
