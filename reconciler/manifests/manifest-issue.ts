/**
 * A problem found in one manifest document, located by a JSON pointer: what the validator, the
 * checks and the probe checks return. The loader turns each into a ManifestError with file, line
 * and column. Its own module so validator.ts and the checks it calls share it without a cycle.
 */
import type { ManifestErrorCode } from './errors.ts';

export interface ManifestIssue {
  code: ManifestErrorCode;
  /** JSON pointer shown with the message; '' for the whole document. */
  pointer: string;
  message: string;
  /** What to point at in the source when it is not the value at `pointer`: a key, or another node. */
  at?: { pointer: string; key: boolean };
}
