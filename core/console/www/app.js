// The console's shell: the tabs, the access token, and one view at a time.
import { setToken, token, showError } from './api.js';
import * as traffic from './traffic.js';
import * as plugins from './plugins.js';
import * as delivery from './delivery.js';
import * as billing from './billing.js';
import * as recovery from './recovery.js';
import * as audit from './audit.js';

const views = { traffic, plugins, delivery, billing, recovery, audit };
let stop = null;

async function show() {
  const name = (location.hash || '#traffic').slice(1).split('?')[0];
  const view = views[name] ? name : 'traffic';
  for (const a of document.querySelectorAll('#tabs a'))
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  if (stop) stop();
  stop = null;
  showError(null);
  const main = document.getElementById('view');
  main.replaceChildren();
  main.dataset.view = view;
  document.title = `${view[0].toUpperCase()}${view.slice(1)} — Crosswalk console`;
  try {
    stop = (await views[view].render(main)) || null;
  } catch (e) {
    showError(e);
  }
}

document.getElementById('token').value = token();
document.getElementById('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken(document.getElementById('token').value.trim());
  show();
});
window.addEventListener('hashchange', show);
show();
