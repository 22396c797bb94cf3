import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeadDiff } from '../../state/records/preview.ts';
import { COMMENT_MARKER, commentMarkdown, hasChanges, planMarkdown, planSummaryLine, planText } from '../../reconciler/preview/plan-report.ts';

/** Plans as a commit-status line, Markdown and text. */

const diff: HeadDiff = {
  commit: 'b'.repeat(40),
  base: 'a'.repeat(40),
  valid: true,
  errors: [],
  summary: '+1 ~1 -0',
  added: [{ name: 'shop/api', changes: ['replicas 2', 'template 0123456789'] }],
  changed: [{ name: 'shop/web', changes: ['replicas 2 -> 3'] }],
  removed: [],
};
const invalid: HeadDiff = { commit: 'c'.repeat(40), valid: false, errors: ['apps/web.yaml:7:13 Deployment shop/web /spec/replicas: must be integer', 'x ``` y | z'], summary: 'invalid', added: [], changed: [], removed: [] };
const none: HeadDiff = { ...diff, summary: '+0 ~0 -0', added: [], changed: [] };

test('the status line: counts against the running commit, or why it is invalid', () => {
  assert.equal(planSummaryLine(diff), '+1 ~1 -0 against aaaaaaa');
  assert.equal(planSummaryLine(none), '+0 ~0 -0 (no changes) against aaaaaaa');
  assert.equal(planSummaryLine(invalid), 'invalid: 2 error(s): apps/web.yaml:7:13 Deployment shop/web /spec/replicas: must be integer');
  assert.equal(hasChanges(diff), true);
  assert.equal(hasChanges(none), false);
});

test('Markdown: a table of changes; errors in a fence nothing inside can close', () => {
  assert.equal(
    planMarkdown(diff),
    [
      '**Plan** for `bbbbbbb` against `aaaaaaa` (what runs now): **+1 ~1 -0**',
      '',
      '| | Object | Changes |',
      '|---|---|---|',
      '| `+` | Deployment `shop/api` | replicas 2, template 0123456789 |',
      '| `~` | Deployment `shop/web` | replicas 2 -> 3 |',
    ].join('\n'),
  );
  assert.match(planMarkdown(none), /No changes\.$/);
  const md = planMarkdown(invalid);
  assert.match(md, /^\*\*Invalid manifests\*\* at `ccccccc`: 2 error\(s\)/);
  assert.ok(md.includes('````\napps/web.yaml:7:13'), md);
  const comment = commentMarkdown(7, diff, { state: 'ready', message: '2 deployment(s) ready', namespaces: ['pr-7-shop'], endpoints: [{ deployment: 'pr-7-shop/web', url: 'http://127.0.0.1:1234' }] });
  assert.ok(comment.startsWith(`${COMMENT_MARKER}\n### Gantry: pull request #7`));
  assert.match(comment, /\*\*Preview\*\* ✅ ready: 2 deployment\(s\) ready/);
  assert.match(comment, /\| `pr-7-shop\/web` \| http:\/\/127\.0\.0\.1:1234 \|/);
});

test('text: as `gantry diff` prints it', () => {
  assert.equal(planText(diff), 'commit bbbbbbb against aaaaaaa: +1 ~1 -0\n+ Deployment shop/api: replicas 2, template 0123456789\n~ Deployment shop/web: replicas 2 -> 3');
  assert.equal(planText(none), 'commit bbbbbbb against aaaaaaa: no changes');
  assert.match(planText(invalid), /^commit ccccccc is invalid:\n  apps\/web\.yaml:7:13/);
});
