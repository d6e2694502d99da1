// The xterm colour themes that match the app's light and dark themes.
import type { ITheme } from '@xterm/xterm';

import type { Theme } from '../../theme';

const LIGHT: ITheme = {
  background: '#fbfbfc',
  foreground: '#1b1f24',
  cursor: '#1b1f24',
  cursorAccent: '#fbfbfc',
  selectionBackground: '#b6cdfa',
  selectionInactiveBackground: '#d5e0f5',
  black: '#24292f',
  red: '#c4262e',
  green: '#116329',
  yellow: '#7d4e00',
  blue: '#0550ae',
  magenta: '#8250df',
  cyan: '#1b7c83',
  white: '#6e7781',
  brightBlack: '#57606a',
  brightRed: '#a40e26',
  brightGreen: '#1a7f37',
  brightYellow: '#633c01',
  brightBlue: '#218bff',
  brightMagenta: '#a475f9',
  brightCyan: '#3192aa',
  brightWhite: '#8c959f',
};

const DARK: ITheme = {
  background: '#0f1115',
  foreground: '#d8dde3',
  cursor: '#e6e8eb',
  cursorAccent: '#0f1115',
  selectionBackground: '#3a4e78',
  selectionInactiveBackground: '#2c3547',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

export const xtermTheme = (t: Theme) => (t === 'dark' ? DARK : LIGHT);
