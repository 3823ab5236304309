// Placeholder: filled in by the issue that owns 'inject'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('inject: not implemented yet\n');
  return 1;
}
