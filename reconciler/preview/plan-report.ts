import type { HeadDiff } from '../../state/records/preview.ts';
import { shortSha } from '../../lib/short-sha.ts';
import { joinErrors } from '../../state/records/status.ts';

/**
 * A plan (HeadDiff: what a revision would change against what runs now) as text, pure: the
 * one-line summary of the `gantry/plan` commit status, the Markdown of the pull-request comment
 * and of `gantry plan -o markdown`, and the plain text of `gantry plan`.
 */


export function hasChanges(diff: HeadDiff): boolean {
  return diff.added.length + diff.changed.length + diff.removed.length > 0;
}

/** `+2 ~1 -0`, or why the revision is invalid; fits a commit status description. */
export function planSummaryLine(diff: HeadDiff): string {
  if (!diff.valid) return `invalid: ${diff.errorCount ?? diff.errors.length} error(s): ${diff.errors[0] ?? ''}`;
  return `${diff.summary}${hasChanges(diff) ? '' : ' (no changes)'} against ${shortSha(diff.base)}`;
}

function rows(diff: HeadDiff): { sign: string; kind: string; name: string; changes: string[] }[] {
  return [
    ...diff.added.map((x) => ({ sign: '+', ...x, kind: x.kind ?? 'Deployment' })),
    ...diff.changed.map((x) => ({ sign: '~', ...x, kind: x.kind ?? 'Deployment' })),
    ...diff.removed.map((x) => ({ sign: '-', ...x, kind: x.kind ?? 'Deployment' })),
  ];
}

/** The warnings of a plan (ignored objects and fields, skipped files), as indented lines; none: []. */
function warningLines(diff: HeadDiff, indent: string): string[] {
  const count = diff.warningCount ?? diff.warnings?.length ?? 0;
  if (count === 0) return [];
  return [`${count} warning(s) (listed, not applied):`, `${indent}${joinErrors(diff.warnings ?? [], count, `\n${indent}`)}`];
}

export function planText(diff: HeadDiff): string {
  if (!diff.valid) return [`commit ${shortSha(diff.commit)} is invalid:`, `  ${joinErrors(diff.errors, diff.errorCount, '\n  ')}`, ...warningLines(diff, '  ')].join('\n');
  const lines = rows(diff);
  return [
    `commit ${shortSha(diff.commit)} against ${shortSha(diff.base)}: ${lines.length === 0 ? 'no changes' : diff.summary}`,
    ...lines.map((l) => `${l.sign} ${l.kind} ${l.name}${l.changes.length > 0 ? `: ${l.changes.join(', ')}` : ''}`),
    ...warningLines(diff, '  '),
  ].join('\n');
}

/** A fenced block that no backtick run inside `text` can close early. */
function fenced(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}\n${text}\n${fence}`;
}

/** Table cells: no pipes or newlines from the content. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

export function planMarkdown(diff: HeadDiff): string {
  if (!diff.valid) {
    return [`**Invalid manifests** at \`${shortSha(diff.commit)}\`: ${diff.errorCount ?? diff.errors.length} error(s); nothing would be applied.`, '', fenced(joinErrors(diff.errors, diff.errorCount, '\n'))].join('\n');
  }
  const lines = rows(diff);
  const head = `**Plan** for \`${shortSha(diff.commit)}\` against \`${shortSha(diff.base)}\` (what runs now): **${diff.summary}**`;
  const body = lines.length === 0 ? ['No changes.'] : ['| | Object | Changes |', '|---|---|---|', ...lines.map((l) => `| \`${l.sign}\` | ${l.kind} \`${cell(l.name)}\` | ${cell(l.changes.join(', '))} |`)];
  const count = diff.warningCount ?? diff.warnings?.length ?? 0;
  const warnings = count === 0 ? [] : ['', `<details><summary>${count} warning(s): ignored objects and fields, listed but not applied</summary>`, '', fenced(joinErrors(diff.warnings ?? [], count, '\n')), '', '</details>'];
  return [head, '', ...body, ...warnings].join('\n');
}

export interface PreviewSummary {
  state: 'deploying' | 'ready' | 'failed' | 'closed' | 'awaiting-approval';
  message: string;
  namespaces: string[];
  /** Without `url` an endpoint is listed but its address (a node's) is not published. */
  endpoints: { deployment: string; url?: string }[];
  /** Where the API shows the addresses that are not published here (e.g. /api/v1/previews/7). */
  detailsAt?: string;
}

/** Hidden marker: tells Gantry's comment apart from people's. */
export const COMMENT_MARKER = '<!-- gantry:plan -->';

export function commentMarkdown(pr: number, diff: HeadDiff | undefined, preview: PreviewSummary): string {
  const icon = { deploying: '⏳', ready: '✅', failed: '❌', closed: '🗑️', 'awaiting-approval': '🔒' }[preview.state];
  const out = [COMMENT_MARKER, `### Gantry: pull request #${pr}`, ''];
  if (diff) out.push(planMarkdown(diff), '');
  out.push(`**Preview** ${icon} ${preview.state.replace('-', ' ')}: ${cell(preview.message)}`);
  if (preview.namespaces.length > 0) out.push('', `Namespaces: ${preview.namespaces.map((n) => `\`${n}\``).join(', ')}`);
  if (preview.endpoints.length > 0) {
    out.push('', '| Deployment | Endpoint |', '|---|---|', ...preview.endpoints.map((e) => `| \`${cell(e.deployment)}\` | ${e.url === undefined ? '_not published_' : cell(e.url)} |`));
    if (preview.endpoints.some((e) => e.url === undefined)) {
      out.push('', `Endpoint addresses are not published on pull requests: \`GET ${preview.detailsAt ?? '/api/v1/previews'}\` on the Gantry API lists them (or start the reconciler with \`--preview-comment-urls\`).`);
    }
  }
  return out.join('\n');
}
