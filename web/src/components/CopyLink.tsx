// A link shown once to hand on (an invite, a password reset): a read-only field that
// selects itself on focus, a Copy button, and a status line saying whether it copied.
import { useId, useState } from 'preact/hooks';

import { copyText } from './terminal/clipboard';
import './CopyLink.css';

export function CopyLink(props: { label: string; url: string; testid: string; note?: string }) {
  const uid = useId();
  const [copied, setCopied] = useState('');
  const copy = async () => setCopied((await copyText(props.url)) ? 'Copied.' : 'Copying failed; select the link and copy it.');
  return (
    <div class="card copy-link" data-testid={`${props.testid}-box`}>
      <label for={`${uid}-url`}>{props.label}</label>
      <div class="row">
        <input
          id={`${uid}-url`}
          class="copy-link-url"
          data-testid={props.testid}
          readOnly
          spellcheck={false}
          value={props.url}
          aria-describedby={props.note ? `${uid}-note` : undefined}
          onFocus={(e) => (e.target as HTMLInputElement).select()}
        />
        <button type="button" class="secondary" data-testid={`${props.testid}-copy`} onClick={copy}>
          Copy
        </button>
      </div>
      {props.note && (
        <p id={`${uid}-note`} class="muted copy-link-note">
          {props.note}
        </p>
      )}
      <span class="muted copy-link-status" role="status">
        {copied}
      </span>
    </div>
  );
}
