import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceStatusWord, readyContainers, type DisplayStatus } from '../../state/records/instance-display.ts';
import type { ContainerStatus } from '../../state/records/instance.ts';
import { describeInstance, renderInstances, type InstanceItem } from '../../cli/instance-format.ts';
import { render } from '../../cli/format.ts';

/** kubectl's STATUS word and READY for instances, and how `gantry get instances` / `describe instance` print them. Pure. */

const c = (name: string, extra: Partial<ContainerStatus> = {}): ContainerStatus => ({ name, running: false, restarts: 0, ports: [], ...extra });
const running = (name: string, ready = true, extra: Partial<ContainerStatus> = {}) => c(name, { running: true, state: 'Running', ready, ...extra });
const done = (name: string) => c(name, { state: 'Terminated', reason: 'Completed', exitCode: 0 });

test('the STATUS word, as kubectl get pods prints it', () => {
  const cases: [string, DisplayStatus | undefined, string][] = [
    ['no status yet', undefined, 'Pending'],
    ['an older agent: the phase, whatever its containers say', { phase: 'Running', containers: [c('main', { running: true })] }, 'Running'],
    ['an older agent, exited', { phase: 'Failed', containers: [c('main', { exitCode: 1 })] }, 'Failed'],
    ['init containers not started yet (PodInitializing)', { phase: 'Pending', initContainers: [c('a', { state: 'Waiting', reason: 'PodInitializing' }), c('b', { state: 'Waiting', reason: 'PodInitializing' })], containers: [c('main', { state: 'Waiting', reason: 'PodInitializing' })] }, 'Init:0/2'],
    ['the first init container running', { phase: 'Pending', initContainers: [running('a', false), c('b', { state: 'Waiting' })] }, 'Init:0/2'],
    ['the second running', { phase: 'Pending', initContainers: [done('a'), running('b', false)] }, 'Init:1/2'],
    ['an init container in a crash loop', { phase: 'Pending', initContainers: [done('a'), c('b', { state: 'Waiting', reason: 'CrashLoopBackOff', restarts: 3 })] }, 'Init:CrashLoopBackOff'],
    ['an init container that failed (restartPolicy Never)', { phase: 'Failed', initContainers: [c('a', { state: 'Terminated', reason: 'Error', exitCode: 2 })] }, 'Init:Error'],
    ['an init container that failed without a reason', { phase: 'Failed', initContainers: [c('a', { state: 'Terminated', exitCode: 3 })] }, 'Init:ExitCode:3'],
    ['an init container OOM-killed', { phase: 'Pending', initContainers: [c('a', { state: 'Terminated', reason: 'OOMKilled', exitCode: 137 })] }, 'Init:OOMKilled'],
    ['an init container pulling its image', { phase: 'Pending', initContainers: [c('a', { state: 'Waiting', reason: 'ImagePullFailed' })] }, 'Init:ImagePullFailed'],
    ['an older-style init status (no state): derived from exitCode', { phase: 'Pending', initContainers: [c('a', { exitCode: 0 }), c('b', { running: true })] }, 'Init:1/2'],
    ['init done, containers creating', { phase: 'Pending', initContainers: [done('a')], containers: [c('main', { state: 'Waiting', reason: 'ContainerCreating' })] }, 'ContainerCreating'],
    ['init done, running', { phase: 'Running', initContainers: [done('a')], containers: [running('main')] }, 'Running'],
    ['a container in a crash loop beside a running one', { phase: 'Running', containers: [running('main'), c('side', { state: 'Waiting', reason: 'CrashLoopBackOff' })] }, 'CrashLoopBackOff'],
    ['the first container decides when both have a reason (kubectl reads last to first)', { phase: 'Running', containers: [c('a', { state: 'Waiting', reason: 'ImagePullFailed' }), c('b', { state: 'Waiting', reason: 'CrashLoopBackOff' })] }, 'ImagePullFailed'],
    ['a container terminated without a reason', { phase: 'Failed', containers: [c('main', { state: 'Terminated', exitCode: 1 })] }, 'ExitCode:1'],
    ['all completed', { phase: 'Exited', containers: [done('a'), done('b')] }, 'Completed'],
    ['one completed, one running and ready: Running', { phase: 'Running', containers: [done('job'), running('main')] }, 'Running'],
    ['one completed, one running, the instance unready: NotReady', { phase: 'Running', ready: false, containers: [done('job'), running('main')] }, 'NotReady'],
    ['one completed, one running unready: Completed', { phase: 'Running', containers: [done('job'), running('main', false)] }, 'Completed'],
  ];
  for (const [name, status, word] of cases) assert.equal(instanceStatusWord(status), word, name);
  // Totals come from the record when given (an agent that has not listed them all yet).
  assert.equal(instanceStatusWord({ phase: 'Pending', initContainers: [] }, { containers: [1], initContainers: [1, 2, 3] }), 'Init:0/3');
  // An agent that reports no initContainers for a template with some predates them: its phase.
  assert.equal(instanceStatusWord({ phase: 'Running', containers: [c('main', { running: true })] }, { containers: [1], initContainers: [1] }), 'Running');
});

test('READY counts ready, running app containers; unknown for older agents', () => {
  const cases: [string, DisplayStatus | undefined, string | undefined][] = [
    ['no status', undefined, undefined],
    ['an older agent (no per-container ready)', { phase: 'Running', containers: [c('main', { running: true })] }, undefined],
    ['both ready', { phase: 'Running', containers: [running('a'), running('b')] }, '2/2'],
    ['one unready', { phase: 'Running', containers: [running('a'), running('b', false)] }, '1/2'],
    ['ready but not running does not count', { phase: 'Running', containers: [running('a'), c('b', { state: 'Terminated', ready: true, exitCode: 0 })] }, '1/2'],
    ['init containers never count', { phase: 'Pending', initContainers: [running('i')], containers: [c('a', { state: 'Waiting', ready: false })] }, '0/1'],
  ];
  for (const [name, status, ready] of cases) assert.equal(readyContainers(status), ready, name);
});

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const view = (extra: Partial<InstanceItem> = {}): InstanceItem => ({
  id: 'default.web-abc1234567-0',
  namespace: 'default',
  deployment: 'web',
  revision: 'abc1234567',
  commit: '0123456789abcdef0123456789abcdef01234567',
  node: 'node-1',
  phase: 'Running',
  ready: true,
  reason: null,
  message: null,
  pid: 4242,
  exitCode: null,
  restarts: 0,
  hostIP: '127.0.0.1',
  ports: [{ containerPort: 8080, hostPort: 30001 }],
  createdAt: NOW - 300_000,
  startedAt: NOW - 240_000,
  ...extra,
});

test('get instances: statuses of older agents print exactly as before (PHASE, no READY)', () => {
  const old = view({ containers: [c('main', { running: true, pid: 4242 })] });
  const pending = view({ id: 'default.web-abc1234567-1', node: null, phase: 'Pending', ready: false, reason: 'Unschedulable', message: '0/1 nodes available', pid: null, hostIP: null, ports: [] });
  assert.equal(
    renderInstances([old, pending], false, NOW),
    [
      'NAMESPACE   ID                         NODE     PHASE     PID    PORTS                   RESTARTS   AGE   REASON',
      'default     default.web-abc1234567-0   node-1   Running   4242   127.0.0.1:30001->8080   0          5m',
      'default     default.web-abc1234567-1   <none>   Pending   -      -                       0          5m    0/1 nodes available',
    ].join('\n'),
  );
  // The API's views as they are today (no containers at all) too, through render().
  const { containers: _, ...bare } = old;
  assert.match(render('instances', [bare], 'table').split('\n')[0]!, /^NAMESPACE {3}ID {25}NODE {5}PHASE {5}PID {4}PORTS {19}RESTARTS {3}AGE +REASON$/);
});

test('get instances: READY and STATUS once agents report container states; -o wide lists each container', () => {
  const init = view({ phase: 'Pending', ready: false, pid: null, ports: [], initContainers: [done('migrate'), c('seed', { state: 'Waiting', reason: 'CrashLoopBackOff', restarts: 4 })], containers: [c('main', { state: 'Waiting', reason: 'PodInitializing', ready: false })] });
  const up = view({ id: 'default.web-abc1234567-1', initContainers: [done('migrate'), done('seed')], containers: [running('main', true, { restarts: 1 })] });
  assert.equal(
    renderInstances([init, up], false, NOW),
    [
      'NAMESPACE   ID                         NODE     READY   STATUS                  PID    PORTS                   RESTARTS   AGE   REASON',
      'default     default.web-abc1234567-0   node-1   0/1     Init:CrashLoopBackOff   -      -                       0          5m',
      'default     default.web-abc1234567-1   node-1   1/1     Running                 4242   127.0.0.1:30001->8080   0          5m',
    ].join('\n'),
  );
  const wide = render('instances', [init, up], 'wide').split('\n');
  assert.match(wide[0]!, /RESTARTS {3}AGE +CONTAINERS +REASON$/);
  assert.match(wide[1]!, / migrate\(init\):Completed seed\(init\):CrashLoopBackOff,restarts=4 main:PodInitializing\s*$/);
  assert.match(wide[2]!, / migrate\(init\):Completed seed\(init\):Completed main:Running,ready,restarts=1\s*$/);
  // Other kinds have no wide form: their table.
  assert.equal(render('nodes', [], 'wide'), 'No nodes found.');
});

test('describe instance: the instance, then init containers and containers with state, reason, ready, restarts and last termination', () => {
  const at = (ms: number) => new Date(NOW - ms).toISOString();
  const text = describeInstance(
    view({
      phase: 'Pending',
      ready: false,
      pid: null,
      podIP: '172.17.0.5',
      initContainers: [
        c('migrate', { state: 'Terminated', reason: 'Completed', exitCode: 0, startedAt: NOW - 200_000, finishedAt: NOW - 190_000 }),
        c('seed', { state: 'Waiting', reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container', restarts: 3, lastTermination: { exitCode: 1, reason: 'Error', startedAt: NOW - 70_000, finishedAt: NOW - 60_000 } }),
      ],
      containers: [c('main', { state: 'Waiting', reason: 'PodInitializing', ready: false })],
    }),
    NOW,
  );
  assert.equal(
    text,
    [
      'Name:        default.web-abc1234567-0',
      'Namespace:   default',
      'Deployment:  web',
      'Revision:    abc1234567',
      'Commit:      0123456',
      'Node:        node-1',
      'Status:      Init:CrashLoopBackOff',
      'Phase:       Pending',
      'Ready:       0/1',
      'IP:          172.17.0.5',
      'Host IP:     127.0.0.1',
      'Ports:       127.0.0.1:30001->8080',
      'Restarts:    0',
      `Created:     ${at(300_000)} (5m ago)`,
      `Started:     ${at(240_000)} (4m ago)`,
      'Init Containers:',
      '  migrate:',
      '    State:          Terminated',
      '      Reason:       Completed',
      '      Exit Code:    0',
      `      Started:      ${at(200_000)} (3m ago)`,
      `      Finished:     ${at(190_000)} (3m ago)`,
      '    Restart Count:  0',
      '  seed:',
      '    State:          Waiting',
      '      Reason:       CrashLoopBackOff',
      '      Message:      back-off 40s restarting failed container',
      '    Last State:     Terminated',
      '      Reason:       Error',
      '      Exit Code:    1',
      `      Started:      ${at(70_000)} (70s ago)`,
      `      Finished:     ${at(60_000)} (60s ago)`,
      '    Restart Count:  3',
      'Containers:',
      '  main:',
      '    State:          Waiting',
      '      Reason:       PodInitializing',
      '    Ready:          False',
      '    Restart Count:  0',
    ].join('\n'),
  );
  // A status of an older agent, or none yet: what is known, and no per-container block to invent.
  assert.match(describeInstance(view({ phase: 'Pending', node: null, pid: null, ready: false }), NOW), /\nStatus: {6}Pending\nReady: {7}False\n[\s\S]*\nContainers:\n {2}\(no status reported yet\)$/);
});
