/** Renders rows as an aligned text table with a header line. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export type OutputFormat = 'table' | 'json';

export function parseOutputFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === 'table') return 'table';
  if (v === 'json') return 'json';
  throw new RangeError(`unknown output format ${JSON.stringify(v)} (use table or json)`);
}
