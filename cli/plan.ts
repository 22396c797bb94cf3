import { InvalidArgumentError, Option, type Command } from 'commander';
import type { HeadDiff } from '../state/records/preview.ts';
import { hasChanges, planMarkdown, planText } from '../reconciler/preview/plan-report.ts';
import { callApi } from './api-client.ts';

/**
 * `gantry plan [--ref REF|SHA] [-o text|markdown|json]`, for CI pipelines: what that revision of
 * the tracked repository (default: the branch head) would change against what runs now. Exit 0:
 * no changes; 2: changes (as `terraform plan -detailed-exitcode`); 1: invalid manifests (file:line
 * errors on stderr) or an unknown ref.
 */

export const EXIT_NO_CHANGES = 0;
export const EXIT_CHANGES = 2;
export const EXIT_INVALID = 1;

function planFormat(value: string): 'text' | 'markdown' | 'json' {
  if (value !== 'text' && value !== 'markdown' && value !== 'json') throw new InvalidArgumentError(`expected text, markdown or json, got ${JSON.stringify(value)}`);
  return value;
}

export function registerPlanCommand(program: Command, apiOption: () => Option): void {
  program
    .command('plan')
    .description('print what a revision would change against what runs now (exit 0: no changes, 2: changes, 1: invalid)')
    .option('--ref <ref>', 'branch, full ref (refs/pull/7/head) or commit sha; default: the tracked branch head')
    .addOption(new Option('-o, --output <format>', 'text | markdown | json').argParser(planFormat).default('text'))
    .addOption(apiOption())
    .action(async (o: { ref?: string; output: 'text' | 'markdown' | 'json'; api: string }) => {
      const query = o.ref ? `?ref=${encodeURIComponent(o.ref)}` : '';
      const diff = await callApi<HeadDiff>(o.api, `/api/v1/plan${query}`);
      if (o.output === 'json') console.log(JSON.stringify(diff, null, 2));
      else if (o.output === 'markdown') console.log(planMarkdown(diff));
      else if (diff.valid) console.log(planText(diff));
      if (!diff.valid) {
        // The errors go to stderr in every format, so a CI log shows them whatever is captured.
        if (o.output === 'text') console.error(planText(diff));
        else for (const e of diff.errors) console.error(e);
        process.exitCode = EXIT_INVALID;
        return;
      }
      process.exitCode = hasChanges(diff) ? EXIT_CHANGES : EXIT_NO_CHANGES;
    });
}
