import { render } from 'preact';

import { App } from './app';
import { interceptLinks } from './router';
import { applyTheme } from './theme';
import './styles.css';

applyTheme();
interceptLinks();
render(<App />, document.getElementById('app')!);
