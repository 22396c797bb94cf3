import { Command, CommanderError } from 'commander';

/**
 * `gantry completion bash|zsh`: a completion script made from the CLI's own command tree, so it
 * never drifts from the commands: subcommands (and sub-subcommands: `rollout status`, `node
 * drain`), each one's options, the kinds `get`, `describe` and `delete` take, and the values of
 * options with fixed choices. zsh gets the same function through bashcompinit.
 *
 *   source <(gantry completion bash)          # or into ~/.bashrc
 *   source <(gantry completion zsh)           # or into ~/.zshrc
 */

export interface CompletionNode {
  /** Space-separated path: "get", "rollout status". */
  path: string;
  words: string[];
}

const KINDS: Record<string, string[]> = {
  get: ['nodes', 'deployments', 'instances', 'services', 'configmaps', 'secrets'],
  describe: ['deployment', 'instance', 'node', 'service'],
  delete: ['instance'],
  completion: ['bash', 'zsh'],
  node: ['cordon', 'uncordon', 'drain'],
};

/** Every command path and the words that may follow it (subcommands, options, kinds). Pure. */
export function completionTree(program: Command): CompletionNode[] {
  const out: CompletionNode[] = [];
  const walk = (cmd: Command, path: string[]) => {
    const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map((c) => c.name());
    const options = cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
    out.push({ path: path.join(' '), words: [...subs, ...(KINDS[path.join(' ')] ?? []), ...options] });
    for (const o of cmd.options) {
      const choices = (o as unknown as { argChoices?: string[] }).argChoices;
      if (choices && o.long) out.push({ path: [...path, o.long].join(' '), words: choices });
    }
    for (const c of cmd.commands) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return out;
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** The bash function: finds the deepest command path among the words so far, offers what follows it. */
export function bashCompletion(tree: CompletionNode[]): string {
  const cases = tree.map((n) => `    ${quote(n.path)}) words=${quote(n.words.join(' '))} ;;`).join('\n');
  return `# gantry completion (bash): source <(gantry completion bash)
_gantry() {
  local cur path="" candidate i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  # The command path: the words before the cursor that extend a known path (options and their
  # values are skipped); then the values of an option with fixed choices right before the cursor.
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ "\${COMP_WORDS[i]}" == -* ]] && continue
    candidate="\${path:+$path }\${COMP_WORDS[i]}"
    if _gantry_known "$candidate"; then path="$candidate"; fi
  done
  if ((COMP_CWORD > 1)) && [[ "\${COMP_WORDS[COMP_CWORD-1]}" == -* ]]; then
    candidate="\${path:+$path }\${COMP_WORDS[COMP_CWORD-1]}"
    if _gantry_known "$candidate"; then path="$candidate"; fi
  fi
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_gantry_known() {
  case "$1" in
${tree.map((n) => `    ${quote(n.path)}) return 0 ;;`).join('\n')}
  esac
  return 1
}
complete -F _gantry gantry
`;
}

export function zshCompletion(tree: CompletionNode[]): string {
  return `# gantry completion (zsh): source <(gantry completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(tree).split('\n').slice(1).join('\n')}`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(gantry completion bash)')
    .argument('<shell>', 'bash | zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CommanderError(2, 'gantry.usage', `error: unknown shell ${JSON.stringify(shell)}: expected bash or zsh`);
      const tree = completionTree(program);
      process.stdout.write(shell === 'bash' ? bashCompletion(tree) : zshCompletion(tree));
    });
}
