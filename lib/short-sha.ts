/** A commit as people read it: its first 7 characters (Git's short form), or '-' when there is none. */
export function shortSha(commit: string | undefined): string {
  return commit ? commit.slice(0, 7) : '-';
}
