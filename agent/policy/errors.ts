import { WardError } from '../../identity/index.js';

/** One problem in a policy file: where (file, document, rule, field path, line) and what. */
export interface PolicyIssue {
  readonly file: string;
  readonly document: number;
  /** Rule index inside the document, when the problem is inside a rule. */
  readonly rule?: number;
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

export function formatIssue(i: PolicyIssue): string {
  const where = [`document ${i.document}`];
  if (i.rule !== undefined) where.push(`rule ${i.rule}`);
  const line = i.line === undefined ? '' : ` (line ${i.line})`;
  if (i.path === '') return `${i.file}: ${where.join(', ')}${line}: ${i.message}`;
  return `${i.file}: ${where.join(', ')}: ${i.path}${line}: ${i.message}`;
}

/** A policy file that is rejected whole; `issues` lists every problem found. */
export class PolicyValidationError extends WardError {
  constructor(
    readonly file: string,
    readonly issues: readonly PolicyIssue[],
    options?: ErrorOptions,
  ) {
    const shown = issues.slice(0, 20).map(formatIssue);
    const more = issues.length > 20 ? [`... and ${issues.length - 20} more`] : [];
    super(`invalid policy ${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}, nothing applied\n  ${[...shown, ...more].join('\n  ')}`, options);
  }
}
