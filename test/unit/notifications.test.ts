import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_EVENTS, parseNotificationConfig } from '../../reconciler/notifications/notification-config.ts';
import { namespaceOf, retryable, retryDelayMs, slackPayload, wants, webhookPayload } from '../../reconciler/notifications/notification-payloads.ts';

test('the notifications file: defaults, filters, and every mistake named with its place', () => {
  const c = parseNotificationConfig(
    ['receivers:', '  - name: ops', '    slack: { urlEnv: SLACK_URL }', '    namespaces: [shop]', '  - name: audit', "    webhook: { url: 'http://127.0.0.1:9/x' }", "    events: ['*']", '    maxPerMinute: 5', '    maxAttempts: 2'].join('\n'),
    'n.yaml',
  );
  assert.equal(c.receivers.length, 2);
  const [ops, audit] = c.receivers;
  assert.deepEqual([ops!.kind, ops!.target, [...ops!.events!], [...ops!.namespaces!], ops!.maxPerMinute, ops!.maxAttempts], ['slack', { urlEnv: 'SLACK_URL' }, [...DEFAULT_EVENTS], ['shop'], 60, 5]);
  assert.deepEqual([audit!.kind, audit!.target, audit!.events, audit!.namespaces, audit!.maxPerMinute, audit!.maxAttempts], ['webhook', { url: 'http://127.0.0.1:9/x' }, undefined, undefined, 5, 2]);

  const bad: [string, RegExp][] = [
    ['receivers: [', /: n\.yaml: not valid YAML/],
    ['hooks: []', /: n\.yaml: expected a mapping with a receivers list/],
    ['receivers: [{ name: Ops, slack: { urlEnv: X } }]', /receivers\[0\]\.name must be a DNS label/],
    ['receivers: [{ name: a, slack: { urlEnv: X } }, { name: a, slack: { urlEnv: Y } }]', /receivers\[1\]\.name a is used twice/],
    ['receivers: [{ name: a }]', /receivers\[0\] \(a\) needs exactly one of webhook and slack/],
    ['receivers: [{ name: a, slack: { urlEnv: X }, webhook: { urlEnv: Y } }]', /needs exactly one of webhook and slack/],
    ['receivers: [{ name: a, webhook: { url: "ftp://x" } }]', /receivers\[0\]\.webhook\.url must be an http\(s\) URL/],
    ['receivers: [{ name: a, webhook: { url: "https://u:p@hooks.example/x" } }]', /must not hold credentials/],
    ['receivers: [{ name: a, webhook: { url: "http://x", urlEnv: Y } }]', /exactly one of url and urlEnv/],
    ['receivers: [{ name: a, slack: { urlEnv: "1X" } }]', /urlEnv must be an environment variable name/],
    ['receivers: [{ name: a, slack: { urlEnv: X }, events: [] }]', /receivers\[0\]\.events must be a non-empty list/],
    ['receivers: [{ name: a, slack: { urlEnv: X }, maxPerMinute: 0 }]', /maxPerMinute must be a positive integer/],
    ['receivers: [{ name: a, slack: { urlEnv: X }, channel: c }]', /receivers\[0\]: unknown field channel/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseNotificationConfig(text, 'n.yaml'), message, text);
});

test('namespaceOf and wants: reasons and namespaces filter; cluster-wide events pass only unfiltered receivers', () => {
  const table: [string, string | undefined][] = [
    ['deployment/shop/web', 'shop'],
    ['instance/shop.web-abc123def0-0', 'shop'],
    ['service/default/api', 'default'],
    ['node/node-1', undefined],
    ['source', undefined],
    ['preview/7', undefined],
  ];
  for (const [object, ns] of table) assert.equal(namespaceOf(object), ns, object);
  const shopRollbacks = { events: new Set(['RolledBack']), namespaces: new Set(['shop']) };
  assert.equal(wants(shopRollbacks, { reason: 'RolledBack', object: 'deployment/shop/web' }), true);
  assert.equal(wants(shopRollbacks, { reason: 'RolledBack', object: 'deployment/other/web' }), false);
  assert.equal(wants(shopRollbacks, { reason: 'RolloutComplete', object: 'deployment/shop/web' }), false);
  assert.equal(wants(shopRollbacks, { reason: 'RolledBack', object: 'node/node-1' }), false);
  assert.equal(wants({ events: new Set(['NodeNotReady']) }, { reason: 'NodeNotReady', object: 'node/node-1' }), true);
  assert.equal(wants({}, { reason: 'Anything', object: 'source' }), true);
});

test('payloads: the event as recorded, in JSON and in Slack mrkdwn (escaped); retry policy', () => {
  const ev = { id: '1-0', time: Date.UTC(2026, 11, 2), type: 'Warning' as const, reason: 'RolledBack', object: 'deployment/shop/web', message: 'rolled back to <abc> & kept' };
  assert.deepEqual(webhookPayload(ev, { version: '1.2.3' }), { kind: 'GantryEvent', version: '1.2.3', event: { id: '1-0', time: '2026-12-02T00:00:00.000Z', type: 'Warning', reason: 'RolledBack', object: 'deployment/shop/web', namespace: 'shop', message: 'rolled back to <abc> & kept' } });
  const slack = slackPayload(ev) as { text: string };
  assert.equal(slack.text, ':warning: *RolledBack* `deployment/shop/web`: rolled back to &lt;abc&gt; &amp; kept');
  assert.deepEqual([2, 3, 4, 10].map((a) => retryDelayMs(a)), [1000, 2000, 4000, 60_000]);
  assert.equal(retryDelayMs(2, 7), 7000);
  assert.deepEqual([500, 502, 429, 400, 404, 410].map(retryable), [true, true, true, false, false, false]);
});
