// The editor's language for a file, from its extension (kept apart from the editor so
// pages can name it without loading CodeMirror).

export type Language = 'python' | 'javascript' | 'typescript' | 'json' | 'markdown' | 'plain';

/** The language of a path, from its extension. */
export function languageOf(path: string): Language {
  const name = path.split('/').pop() ?? '';
  const ext = name.includes('.') ? name.split('.').pop()!.toLowerCase() : '';
  switch (ext) {
    case 'py':
    case 'pyw':
      return 'python';
    case 'js':
    case 'mjs':
    case 'cjs':
    case 'jsx':
      return 'javascript';
    case 'ts':
    case 'mts':
    case 'cts':
    case 'tsx':
      return 'typescript';
    case 'json':
      return 'json';
    case 'md':
    case 'markdown':
      return 'markdown';
    default:
      return 'plain';
  }
}
