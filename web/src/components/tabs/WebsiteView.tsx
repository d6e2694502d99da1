// A website tab: an external page in a sandboxed iframe, with a link that opens it in a
// new browser tab, since many sites refuse to be shown inside another page.
// Styles: ../ports/Ports.css (the same toolbar as a service tab).
import { useState } from 'preact/hooks';

import '../ports/Ports.css';

export function WebsiteView(props: { url: string; title: string }) {
  const [reloads, setReloads] = useState(0);
  return (
    <div class="svc" data-testid="website-view">
      <div class="svc-bar" role="toolbar" aria-label={`${props.title} controls`}>
        <button type="button" class="ghost small" onClick={() => setReloads((n) => n + 1)} aria-label="Reload" title="Reload">
          ↻
        </button>
        <span class="svc-url muted" title={props.url}>
          {props.url}
        </span>
        <a class="button secondary small" href={props.url} target="_blank" rel="noopener noreferrer" data-testid="website-open-outside">
          Open in a new tab
        </a>
      </div>
      <p class="svc-hint muted">If the page stays blank, the site refuses to be shown inside another page: open it in a new tab.</p>
      <iframe
        key={reloads}
        class="svc-frame"
        src={props.url}
        title={props.title}
        sandbox="allow-scripts allow-forms allow-popups allow-same-origin"
        referrerpolicy="no-referrer"
        data-testid="website-frame"
      />
    </div>
  );
}
