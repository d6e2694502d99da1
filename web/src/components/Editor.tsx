// The code editor (CodeMirror 6): line numbers, history, search and the other basics, the
// language chosen from the file's extension, the light or dark theme following the app,
// Ctrl/Cmd+S to save, and "dirty" tracking against the last saved text.
// Loaded on demand (it is most of the bundle): use `LazyEditor` from './LazyEditor'; its
// CSS (Editor.css) is imported there, since a lazy chunk's CSS is not loaded by itself.
import { javascript } from '@codemirror/lang-javascript';
import { markdown } from '@codemirror/lang-markdown';
import { python } from '@codemirror/lang-python';
import { Compartment, EditorState, type Extension, type Text } from '@codemirror/state';
import { oneDark } from '@codemirror/theme-one-dark';
import { EditorView, keymap, placeholder } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';

import { languageOf, type Language } from '../lib/language';
import { useTheme, type Theme } from '../theme';

/** The document at one moment, for saving: its text and opaque tokens for `markSaved`. */
export interface Snapshot {
  text: string;
  doc: Text;
  /** The `docKey` of the document it was taken from. */
  key: string;
}

export interface EditorHandle {
  /** The current document. */
  snapshot(): Snapshot;
  /** Marks `snap` as the saved state (dirty again if the text changed since it was taken);
   * ignored when another document was loaded since `snap` was taken. */
  markSaved(snap: Snapshot): void;
  focus(): void;
}

export interface EditorProps {
  /** Changes whenever another document is loaded (a new file opened); the text is then replaced. */
  docKey: string;
  /** The document's text when `docKey` changes (the saved state). */
  text: string;
  /** The file path; its extension chooses the language. */
  path: string;
  /** Label for the editing area (screen readers). */
  label?: string;
  readOnly?: boolean;
  /** Shown while the document is empty. */
  placeholder?: string;
  onDirty?: (dirty: boolean) => void;
  onSave?: () => void;
  onHandle?: (h: EditorHandle | null) => void;
}

function languageExtension(lang: Language): Extension {
  switch (lang) {
    case 'python':
      return python();
    case 'javascript':
    case 'json':
      return javascript();
    case 'typescript':
      return javascript({ typescript: true });
    case 'markdown':
      return markdown();
    default:
      return [];
  }
}

const lightTheme = EditorView.theme(
  {
    '&': { backgroundColor: 'var(--surface)', color: 'var(--text)' },
    '.cm-gutters': { backgroundColor: 'var(--surface-2)', color: 'var(--muted)', borderRight: '1px solid var(--border)' },
    '.cm-activeLine': { backgroundColor: 'color-mix(in srgb, var(--accent) 6%, transparent)' },
    '.cm-activeLineGutter': { backgroundColor: 'color-mix(in srgb, var(--accent) 12%, transparent)' },
  },
  { dark: false },
);

function themeExtension(theme: Theme): Extension {
  return theme === 'dark' ? oneDark : lightTheme;
}

const base = EditorView.theme({
  '&': { height: '100%', fontSize: '14px' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '&.cm-focused': { outline: 'none' },
});

export function Editor(props: EditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const saved = useRef<Text | null>(null);
  const dirty = useRef(false);
  const language = useRef(new Compartment());
  const themeC = useRef(new Compartment());
  const readOnlyC = useRef(new Compartment());
  const theme = useTheme();
  // The latest callbacks, read by the long-lived CodeMirror extensions.
  const cb = useRef(props);
  cb.current = props;
  // The key of the document in the view (changes with the state, in the layout effect below).
  const loadedKey = useRef(props.docKey);

  const setDirty = (d: boolean) => {
    if (d !== dirty.current) {
      dirty.current = d;
      cb.current.onDirty?.(d);
    }
  };

  const extensions = (): Extension[] => [
    basicSetup,
    base,
    keymap.of([
      {
        key: 'Mod-s',
        preventDefault: true,
        run: () => {
          cb.current.onSave?.();
          return true;
        },
      },
    ]),
    language.current.of(languageExtension(languageOf(cb.current.path))),
    themeC.current.of(themeExtension(theme)),
    readOnlyC.current.of(EditorState.readOnly.of(!!cb.current.readOnly)),
    cb.current.placeholder ? placeholder(cb.current.placeholder) : [],
    EditorView.contentAttributes.of({ 'aria-label': cb.current.label ?? 'File contents' }),
    EditorView.updateListener.of((u) => {
      if (u.docChanged && saved.current) setDirty(!u.state.doc.eq(saved.current));
    }),
  ];

  // Create the view once.
  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({ doc: props.text, extensions: extensions() }),
    });
    view.current = v;
    saved.current = v.state.doc;
    props.onHandle?.({
      snapshot: () => ({ text: v.state.doc.toString(), doc: v.state.doc, key: loadedKey.current }),
      markSaved: (snap) => {
        if (snap.key !== loadedKey.current) return; // saved from a document no longer open
        saved.current = snap.doc;
        setDirty(!v.state.doc.eq(snap.doc));
      },
      focus: () => v.focus(),
    });
    return () => {
      cb.current.onHandle?.(null);
      v.destroy();
      view.current = null;
    };
  }, []);

  // Another document: a fresh state (its own undo history), before the browser paints so
  // the path and the text change together.
  const firstKey = useRef(props.docKey);
  useLayoutEffect(() => {
    const v = view.current;
    if (!v || firstKey.current === props.docKey) {
      firstKey.current = '';
      return;
    }
    v.setState(EditorState.create({ doc: props.text, extensions: extensions() }));
    loadedKey.current = props.docKey;
    saved.current = v.state.doc;
    setDirty(false);
  }, [props.docKey]);

  useEffect(() => {
    view.current?.dispatch({ effects: language.current.reconfigure(languageExtension(languageOf(props.path))) });
  }, [props.path]);

  useEffect(() => {
    view.current?.dispatch({ effects: themeC.current.reconfigure(themeExtension(theme)) });
  }, [theme]);

  useEffect(() => {
    view.current?.dispatch({ effects: readOnlyC.current.reconfigure(EditorState.readOnly.of(!!props.readOnly)) });
  }, [props.readOnly]);

  return <div class="editor" data-testid="editor" data-language={languageOf(props.path)} ref={host} />;
}
