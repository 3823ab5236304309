// Sorting strings by UTF-16 code units, the same on every machine and locale.
// Not String.prototype.localeCompare: that builds an ICU collator, which pages
// ~3 MiB of ICU data and code into every sidecar (docs/performance.md, Memory).

/** Comparator for Array.prototype.sort: code-unit order (what `<` compares). */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
