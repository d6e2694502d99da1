// Files between the learner's computer and a sandbox: what may be uploaded, and saving a
// downloaded file (components/Uploads.tsx and components/FileTree.tsx use these).
import { bytes } from '../format';

/** The largest file the UI uploads, 64 MiB (the server may allow less: its 413 says so). */
export const MAX_UPLOAD_BYTES = 64 << 20;

/** Why a file called `name` of `size` bytes is not uploaded, or null when it can be. */
export function uploadRefusal(name: string, size: number): string | null {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    return `“${name}” cannot be used as a file name.`;
  if (size > MAX_UPLOAD_BYTES) return `${name} is larger than 64 MiB (${bytes(size)}), the most that can be uploaded here.`;
  return null;
}

/** Hands `blob` to the browser as a download called `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started by the next task; the URL is not needed after that.
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
