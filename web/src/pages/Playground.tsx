// The playground: /playground starts a raw sandbox and lists the user's own
// (playground/Home.tsx); /playground/:id works in one with a file tree, an editor and a
// terminal (playground/Workspace.tsx).
import type { User } from '../api';
import { PlaygroundHome } from './playground/Home';
import { Workspace } from './playground/Workspace';
import './Playground.css';

export function Playground(props: { user: User; sandbox?: string }) {
  return props.sandbox ? <Workspace key={props.sandbox} id={props.sandbox} user={props.user} /> : <PlaygroundHome user={props.user} />;
}
