// Small shared pieces: the error sentence, the spinner, empty states, confirm buttons.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

/** A failure as one sentence, announced to screen readers, with an optional retry. */
export function ErrorMessage(props: { message: string; retry?: () => void }) {
  return (
    <div class="error" role="alert" data-testid="error">
      <span>{props.message}</span>
      {props.retry && (
        <button type="button" class="secondary" onClick={props.retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Spinner(props: { label: string }) {
  return (
    <div class="spinner" role="status" aria-live="polite">
      <span class="spinner-dot" aria-hidden="true" />
      {props.label}…
    </div>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <div class="empty">{props.children}</div>;
}

/** A button that asks "Sure?" on the first press and acts on the second. */
export function ConfirmButton(props: {
  onConfirm: () => void | Promise<void>;
  children: ComponentChildren;
  confirm?: string;
  class?: string;
  testid?: string;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class={props.class ?? 'danger'}
      data-testid={props.testid}
      disabled={props.disabled || busy}
      onBlur={() => setAsking(false)}
      onClick={async () => {
        if (!asking) return setAsking(true);
        setBusy(true);
        try {
          await props.onConfirm();
        } finally {
          setBusy(false);
          setAsking(false);
        }
      }}
    >
      {asking ? (props.confirm ?? 'Click again to confirm') : props.children}
    </button>
  );
}
