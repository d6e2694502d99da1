// The editor, loaded on first use: CodeMirror and its languages are over half of the UI's
// code, and only the playground needs them, so the lab pages load without them.
import { useEffect, useState } from 'preact/hooks';

import type { EditorProps } from './Editor';
import { ErrorMessage, Spinner } from './ui';
import './Editor.css';

type EditorModule = typeof import('./Editor');
let loading: Promise<EditorModule> | null = null;

export function LazyEditor(props: EditorProps) {
  const [mod, setMod] = useState<EditorModule | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    loading ??= import('./Editor');
    loading.then(
      (m) => live && setMod(() => m),
      () => {
        loading = null;
        if (live) setFailed(true);
      },
    );
    return () => void (live = false);
  }, []);
  if (failed) return <ErrorMessage message="The editor could not be loaded; check the connection and reload the page." />;
  if (!mod) return <Spinner label="Loading the editor" />;
  return <mod.Editor {...props} />;
}
