// /playground: start a raw sandbox from an image with optional limits, and list the
// user's own running sandboxes (lab-session nodes excluded: they belong to the lab page).
import { useEffect, useState } from 'preact/hooks';

import { api, errorText, type CreateSandbox, type ImageView, type Sandbox, type User } from '../../api';
import { ConfirmButton, Empty, ErrorMessage, Spinner } from '../../components/ui';
import { ago, bytes, clock } from '../../format';
import { useNow, useVisiblePoll } from '../../hooks';
import { navigate } from '../../router';

const MEMORY = ['256M', '512M', '1G', '2G'];
const TTLS: [string, string][] = [
  ['15m', '15 minutes'],
  ['30m', '30 minutes'],
  ['1h', '1 hour'],
  ['2h', '2 hours'],
];

interface Listed {
  items: Sandbox[];
  /** Local time of the fetch: a deadline is `fetchedAt + ttl_left_ms` (no clock skew). */
  fetchedAt: number;
}

export function PlaygroundHome(props: { user: User }) {
  const [images, setImages] = useState<ImageView[] | null>(null);
  const [imagesError, setImagesError] = useState<string | null>(null);
  const [image, setImage] = useState('debian');
  const [memory, setMemory] = useState('');
  const [network, setNetwork] = useState<'none' | 'egress'>('none');
  const [ttl, setTtl] = useState('');
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const [list, setList] = useState<Listed | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [stopError, setStopError] = useState<string | null>(null);
  const now = useNow();

  const loadImages = () => {
    setImagesError(null);
    api
      .images()
      .then((r) => {
        setImages(r.items);
        if (r.items.length && !r.items.some((i) => i.name === image)) {
          setImage(r.items.some((i) => i.name === 'debian') ? 'debian' : r.items[0].name);
        }
      })
      .catch((e) => setImagesError(errorText(e)));
  };
  useEffect(loadImages, []);

  const loadList = async () => {
    try {
      const [sbs, sessions] = await Promise.all([api.sandboxes(), api.activeSessions().catch(() => null)]);
      // Lab sessions' nodes are the user's sandboxes too; they belong to the lab page.
      const labNodes = new Set((sessions?.items ?? []).flatMap((s) => s.nodes.map((n) => n.sandbox)));
      const mine = sbs.items.filter(
        (s) => s.owner === props.user.id && !labNodes.has(s.id) && (s.state === 'running' || s.state === 'creating'),
      );
      setList({ items: mine.reverse(), fetchedAt: Date.now() });
      setListError(null);
    } catch (e) {
      setListError(errorText(e));
    }
  };
  useVisiblePoll(loadList, 10_000);

  const start = async (e: Event) => {
    e.preventDefault();
    setStarting(true);
    setStartError(null);
    const req: CreateSandbox = { image, network };
    if (memory) req.memory = memory;
    if (ttl) req.ttl = ttl;
    try {
      const sb = await api.createSandbox(req);
      navigate(`/playground/${encodeURIComponent(sb.id)}`);
    } catch (err) {
      setStartError(errorText(err));
      setStarting(false);
    }
  };

  const stop = async (id: string) => {
    setStopError(null);
    try {
      await api.deleteSandbox(id);
    } catch (e) {
      setStopError(errorText(e));
    }
    await loadList();
  };

  const imageNames = images && images.length ? images.map((i) => i.name) : [image];
  const chosen = images?.find((i) => i.name === image);

  return (
    <main class="page pg-home">
      <h1>Playground</h1>
      <p class="muted">A fresh Linux machine for trying things out, with a terminal, a file tree and an editor. It is removed when its time runs out.</p>

      <form class="card pg-start" onSubmit={start} aria-label="Start a playground">
        <div class="pg-fields">
          <div class="field">
            <label for="pg-image">Image</label>
            <select id="pg-image" data-testid="image-select" value={image} onChange={(e) => setImage((e.target as HTMLSelectElement).value)}>
              {imageNames.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="pg-memory">Memory</label>
            <select id="pg-memory" data-testid="memory-select" value={memory} onChange={(e) => setMemory((e.target as HTMLSelectElement).value)}>
              <option value="">Default</option>
              {MEMORY.map((m) => (
                <option key={m} value={m}>
                  {m.replace(/([MG])$/, ' $1B').replace('MB', 'MiB').replace('GB', 'GiB')}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="pg-network">Network</label>
            <select
              id="pg-network"
              data-testid="network-select"
              value={network}
              onChange={(e) => setNetwork((e.target as HTMLSelectElement).value as 'none' | 'egress')}
            >
              <option value="none">None (loopback only)</option>
              <option value="egress">Internet access</option>
            </select>
          </div>
          <div class="field">
            <label for="pg-ttl">Time</label>
            <select id="pg-ttl" data-testid="ttl-select" value={ttl} onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}>
              <option value="">Default</option>
              {TTLS.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          </div>
          <div class="field pg-go">
            <button type="submit" data-testid="start-playground" disabled={starting}>
              {starting ? 'Starting…' : 'Start playground'}
            </button>
          </div>
        </div>
        <p class="muted pg-image-note">
          {chosen ? `${chosen.name}: ${chosen.source}, ${bytes(chosen.size)}.` : images === null && !imagesError ? 'Loading the images…' : '\u00a0'}
        </p>
        {imagesError && <ErrorMessage message={imagesError} retry={loadImages} />}
        {startError && <ErrorMessage message={startError} />}
      </form>

      <h2>Your sandboxes</h2>
      {stopError && <ErrorMessage message={stopError} />}
      {listError && <ErrorMessage message={listError} retry={loadList} />}
      {list === null && !listError && <Spinner label="Loading your sandboxes" />}
      {list && list.items.length === 0 && <Empty>You have no running sandboxes. Start one above.</Empty>}
      {list && list.items.length > 0 && (
        <ul class="pg-list">
          {list.items.map((s) => {
            const left = list.fetchedAt + s.ttl_left_ms - now;
            return (
              <li key={s.id} class="card pg-item" data-testid="playground-item" data-id={s.id}>
                <div class="pg-item-main">
                  <a class="pg-item-id" href={`/playground/${encodeURIComponent(s.id)}`}>
                    {s.id}
                  </a>
                  <span class="badge">{s.image}</span>
                  {s.state !== 'running' && <span class="badge warn">{s.state}</span>}
                </div>
                <div class="pg-item-meta muted">
                  <span>Started {ago(s.created_at_ms, now)}</span>
                  <span>
                    {left > 0 ? (
                      <>
                        <span class="pg-num">{clock(left)}</span> left
                      </>
                    ) : (
                      'Expiring'
                    )}
                  </span>
                  <span>
                    {s.limits.memory} memory, network {s.limits.network}
                  </span>
                </div>
                <div class="row pg-item-actions">
                  <a class="button small" href={`/playground/${encodeURIComponent(s.id)}`} data-testid="open-playground">
                    Open
                  </a>
                  <ConfirmButton class="danger small" testid="stop-playground-item" onConfirm={() => stop(s.id)} confirm="Click again to stop">
                    Stop
                  </ConfirmButton>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </main>
  );
}
