// driftfeed demo page: one live column per region, showing a post travel between regions.
//
// DESIGN. The page discovers the regions with GET /v1/cluster on the origin that served
// it, then talks to every region directly (CORS). Each column is one region's point of
// view: its demo user's home timeline as it arrives *there* (initial GET /v1/timeline,
// then Server-Sent Events), its replication controls and per-peer lag. A poll loop
// (about once a second) reads /v1/digest and /v1/replication from every region and
// drives the convergence banner. The traveller panel posts in one region and reads the
// post in another, with and without the write's Session-Token. Demo users and their
// tokens live in localStorage.
// Every network call tolerates a region being down: the column says so and polling
// goes on. No framework, no build step, nothing fetched from outside the cluster.
'use strict';

(() => {
  // ---------------------------------------------------------------- constants

  const STORE_KEY = 'driftfeed.demo.v1';
  const POLL_MS = 1000;
  const REQUEST_TIMEOUT_MS = 4000;
  const REPLICATION_WAIT_MS = 30000;
  const FEED_LIMIT = 20;        // items asked for on (re)load
  const FEED_KEEP = 60;         // items kept per column
  const FRESH_MS = 2600;        // how long a new arrival stays highlighted
  const FALLBACK_POLL_MS = 3000; // timeline refresh while the live stream is down
  const TRAVEL_WAIT_MS = 5000;   // Session-Wait-Ms of the traveller's read with the token
  const TRAVEL_TIMEOUT_MS = 10000; // traveller requests: longer than that wait and the ack wait

  const KNOWN_REGIONS = {
    paris: { label: 'Paris', color: '#6e56cf', person: ['amelie', 'Amélie'] },
    newyork: { label: 'New York', color: '#0b7de0', person: ['jordan', 'Jordan'] },
    tokyo: { label: 'Tokyo', color: '#d63d78', person: ['yuki', 'Yuki'] },
    london: { label: 'London', color: '#12a594', person: ['oliver', 'Oliver'] },
    berlin: { label: 'Berlin', color: '#e5710f', person: ['lena', 'Lena'] },
    sydney: { label: 'Sydney', color: '#2f9e58', person: ['mia', 'Mia'] },
    saopaulo: { label: 'São Paulo', color: '#c2410c', person: ['rafa', 'Rafa'] },
    singapore: { label: 'Singapore', color: '#7c3aed', person: ['wei', 'Wei'] },
    mumbai: { label: 'Mumbai', color: '#b45309', person: ['anaya', 'Anaya'] },
    sanfrancisco: { label: 'San Francisco', color: '#0e7490', person: ['alex', 'Alex'] },
  };
  const FALLBACK_COLORS = ['#12a594', '#e5710f', '#2f9e58', '#8e4ec6', '#c2410c', '#0e7490'];
  const FALLBACK_PEOPLE = [['sam', 'Sam'], ['noor', 'Noor'], ['ines', 'Inès'], ['kai', 'Kai'], ['omar', 'Omar'], ['zoe', 'Zoë']];

  // ---------------------------------------------------------------- state

  const state = {
    regions: [],          // [{name, url, label, color, ...per-column state}]
    byName: new Map(),
    users: {},            // region name -> {id, name, display_name, region, url, token}
    ready: false,         // setup (registration + replication + follows) finished
    setupRunning: false,
    divergedSince: 0,      // when the banner last turned from converged to diverged
    lastConvergedAfter: 0, // how long the last divergence lasted
    convergedAt: 0,
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'style') el.style.cssText = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function titleCase(name) {
    return String(name).split(/[-_\s]+/).filter(Boolean)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ') || String(name);
  }

  function regionLabel(name) {
    const r = state.byName.get(name);
    if (r) return r.label;
    return KNOWN_REGIONS[name] ? KNOWN_REGIONS[name].label : titleCase(name);
  }

  function regionColor(name) {
    const r = state.byName.get(name);
    if (r) return r.color;
    if (KNOWN_REGIONS[name]) return KNOWN_REGIONS[name].color;
    return FALLBACK_COLORS[hash32(String(name)) % FALLBACK_COLORS.length];
  }

  // Path segment for an id such as "amelie@paris": escape what must be escaped but keep
  // '@', which is legal in a path segment (RFC 3986 pchar).
  function seg(id) {
    return encodeURIComponent(id).replace(/%40/g, '@');
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status; // 0 = network error or timeout
      this.code = code;
    }
  }

  // One JSON exchange. Resolves with {status, data, headers} for every answer the
  // region gives, error statuses included (data: the parsed body, null when empty or
  // not JSON); rejects with ApiError(0) when there is no answer (network, timeout).
  // extra: further request headers.
  async function request(url, { method = 'GET', body, token, headers: extra, timeout = REQUEST_TIMEOUT_MS } = {}) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    const headers = { ...(extra || {}) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    try {
      let res;
      try {
        res = await fetch(url, {
          method, headers, cache: 'no-store', signal: ctl.signal,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        throw new ApiError(0, 'unreachable', ctl.signal.aborted ? 'no answer (timed out)' : 'unreachable');
      }
      let text = '';
      try { text = await res.text(); } catch (e) { /* body lost: keep the status */ }
      let data = null;
      if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
      return { status: res.status, statusText: res.statusText || '', data, headers: res.headers };
    } finally {
      clearTimeout(timer);
    }
  }

  // The server's {"error":{"code","message"}} of a non-2xx answer as an ApiError.
  function errorOf(res) {
    const err = res.data && res.data.error;
    return new ApiError(res.status, (err && err.code) || 'http_' + res.status,
      (err && err.message) || `HTTP ${res.status} ${res.statusText}`.trim());
  }

  // JSON request. Resolves with the parsed body (null when empty); rejects with ApiError
  // carrying the server's {"error":{"code","message"}} or a network description.
  async function api(url, opts) {
    const res = await request(url, opts);
    if (res.status < 200 || res.status > 299) throw errorOf(res);
    return res.data;
  }

  // ---------------------------------------------------------------- storage

  function loadStore() {
    try {
      const s = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
      if (s && typeof s === 'object' && s.users && typeof s.users === 'object') {
        state.users = s.users;
        state.ready = !!s.ready;
      }
    } catch (e) { /* corrupt or unavailable storage: start fresh */ }
  }

  function saveStore() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify({ users: state.users, ready: state.ready }));
    } catch (e) { /* private mode: the demo still works until reload */ }
  }

  // ---------------------------------------------------------------- pictures

  function hash32(str) { // FNV-1a
    let x = 0x811c9dc5;
    for (let i = 0; i < str.length; i++) {
      x ^= str.charCodeAt(i);
      x = Math.imul(x, 0x01000193) >>> 0;
    }
    return x >>> 0;
  }

  function rng(seed) { // small deterministic PRNG (xorshift32)
    let s = seed || 0x9e3779b9;
    return () => {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      return s / 4294967296;
    };
  }

  const pictureCache = new Map();

  // A small generated landscape "photo" for a post, a pure function of its id, so the
  // same post shows the same picture in every column. Returned as a data: URL.
  function pictureFor(id) {
    let url = pictureCache.get(id);
    if (url) return url;
    const rand = rng(hash32(id));
    for (let i = 0; i < 4; i++) rand();
    const W = 400, H = 150;
    const hue = Math.floor(rand() * 360);
    const mood = ['day', 'dusk', 'night', 'dawn'][Math.floor(rand() * 4)];
    const hsl = (hh, s, l) => `hsl(${((hh % 360) + 360) % 360} ${s}% ${l}%)`;
    let skyTop, skyBottom, orb, orbGlow, landL;
    if (mood === 'day') {
      skyTop = hsl(hue, 70, 62); skyBottom = hsl(hue + 30, 85, 88);
      orb = hsl(48, 100, 78); orbGlow = hsl(48, 100, 90); landL = [70, 52, 34];
    } else if (mood === 'dusk') {
      skyTop = hsl(hue + 250, 45, 38); skyBottom = hsl(hue + 20, 90, 72);
      orb = hsl(30, 100, 70); orbGlow = hsl(25, 100, 80); landL = [48, 33, 20];
    } else if (mood === 'night') {
      skyTop = hsl(hue + 220, 50, 12); skyBottom = hsl(hue + 240, 45, 32);
      orb = hsl(55, 60, 92); orbGlow = hsl(220, 60, 70); landL = [26, 18, 10];
    } else {
      skyTop = hsl(hue + 190, 55, 70); skyBottom = hsl(hue + 340, 90, 86);
      orb = hsl(10, 100, 82); orbGlow = hsl(0, 100, 92); landL = [72, 56, 40];
    }
    const parts = [];
    parts.push(`<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${skyTop}"/><stop offset="1" stop-color="${skyBottom}"/></linearGradient>` +
      `<radialGradient id="g"><stop offset="0" stop-color="${orbGlow}" stop-opacity=".9"/><stop offset="1" stop-color="${orbGlow}" stop-opacity="0"/></radialGradient></defs>`);
    parts.push(`<rect width="${W}" height="${H}" fill="url(#s)"/>`);
    if (mood === 'night') {
      for (let i = 0; i < 28; i++) {
        const r = (rand() * 1.1 + 0.3).toFixed(2);
        parts.push(`<circle cx="${(rand() * W).toFixed(1)}" cy="${(rand() * H * 0.6).toFixed(1)}" r="${r}" fill="#fff" opacity="${(0.4 + rand() * 0.6).toFixed(2)}"/>`);
      }
    }
    const ox = 40 + rand() * (W - 80), oy = 24 + rand() * 40, orr = 12 + rand() * 12;
    parts.push(`<circle cx="${ox.toFixed(1)}" cy="${oy.toFixed(1)}" r="${(orr * 3).toFixed(1)}" fill="url(#g)"/>`);
    parts.push(`<circle cx="${ox.toFixed(1)}" cy="${oy.toFixed(1)}" r="${orr.toFixed(1)}" fill="${orb}"/>`);
    if (mood !== 'night') { // a couple of soft clouds
      const n = Math.floor(rand() * 3);
      for (let i = 0; i < n; i++) {
        const cx = rand() * W, cy = 18 + rand() * 45, s = 0.7 + rand() * 0.8;
        parts.push(`<g fill="#fff" opacity=".55" transform="translate(${cx.toFixed(1)} ${cy.toFixed(1)}) scale(${s.toFixed(2)})">` +
          '<ellipse cx="0" cy="0" rx="22" ry="7"/><ellipse cx="-8" cy="-5" rx="10" ry="7"/><ellipse cx="7" cy="-6" rx="12" ry="8"/></g>');
      }
    }
    const sharp = rand() < 0.5;
    const landHue = hue + 140 + rand() * 60;
    for (let layer = 0; layer < 3; layer++) {
      const base = H * (0.52 + layer * 0.14);
      const amp = (sharp ? 34 : 16) * (1 - layer * 0.25);
      let x = 0;
      let d = `M0 ${H} L0 ${(base - rand() * amp).toFixed(1)}`;
      while (x < W) {
        const step = (sharp ? 30 : 60) + rand() * (sharp ? 40 : 70);
        const nx = Math.min(W, x + step);
        const ny = base - rand() * amp;
        if (sharp) d += ` L${nx.toFixed(1)} ${ny.toFixed(1)}`;
        else d += ` Q${((x + nx) / 2).toFixed(1)} ${(ny - amp * 0.8).toFixed(1)} ${nx.toFixed(1)} ${ny.toFixed(1)}`;
        x = nx;
      }
      d += ` L${W} ${H} Z`;
      const sat = mood === 'night' ? 25 : 38 + layer * 6;
      parts.push(`<path d="${d}" fill="${hsl(landHue + layer * 8, sat, landL[layer])}"/>`);
    }
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" preserveAspectRatio="xMidYMid slice">${parts.join('')}</svg>`;
    url = 'data:image/svg+xml,' + encodeURIComponent(svg);
    pictureCache.set(id, url);
    return url;
  }

  // ---------------------------------------------------------------- time helpers

  function parseTime(s) {
    if (typeof s !== 'string') return NaN;
    const t = Date.parse(s);
    if (!Number.isNaN(t)) return t;
    // Fallback for more than millisecond precision: keep the first three fraction digits.
    return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
  }

  function formatDelay(ms) {
    const sign = ms < 0 ? '−' : '+';
    const a = Math.abs(ms);
    if (a < 10000) return `${sign}${Math.round(a)} ms`;
    if (a < 120000) return `${sign}${(a / 1000).toFixed(1)} s`;
    return `${sign}${Math.round(a / 60000)} min`;
  }

  function clockTime(ms) {
    if (Number.isNaN(ms)) return '';
    const d = new Date(ms);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function originOf(item) {
    if (item && typeof item.region === 'string' && item.region) return item.region;
    const id = item && typeof item.id === 'string' ? item.id : '';
    const dash = id.indexOf('-');
    return dash >= 0 ? id.slice(dash + 1) : '';
  }

  function displayNameOf(authorId) {
    for (const u of Object.values(state.users)) {
      if (u && u.id === authorId && u.display_name) return u.display_name;
    }
    const at = String(authorId).indexOf('@');
    return titleCase(at > 0 ? String(authorId).slice(0, at) : String(authorId));
  }

  // ---------------------------------------------------------------- columns

  function makeRegion(entry, index) {
    const name = String(entry.name);
    const known = KNOWN_REGIONS[name];
    const r = {
      name,
      url: String(entry.url || '').replace(/\/+$/, ''),
      label: known ? known.label : titleCase(name),
      color: known ? known.color : FALLBACK_COLORS[index % FALLBACK_COLORS.length],
      person: known ? known.person : FALLBACK_PEOPLE[index % FALLBACK_PEOPLE.length],
      posts: new Map(),
      es: null, esTimer: 0, streamBroken: false, lastFallbackLoad: 0,
      loadedOnce: false, loading: false, reloadWanted: false,
      digest: null, repl: null, healthy: null, lastError: '',
      togglePending: false, toggleAt: 0, delayPending: false, delayAt: 0, dragging: false,
      gen: 0,
    };
    const node = $('#region-template').content.firstElementChild.cloneNode(true);
    node.dataset.region = name;
    node.style.setProperty('--accent', r.color);
    r.el = node;
    r.ui = {
      name: $('.region-name', node), conn: $('.conn', node), url: $('.region-url', node),
      records: $('.region-records', node), cutoff: $('input.cutoff', node),
      switchText: $('.switch-text', node), delay: $('input.delay', node),
      delayValue: $('.delay-value', node), peers: $('.peers', node), notice: $('.notice', node),
      form: $('form.compose', node), as: $('.compose-as', node), textarea: $('textarea', node),
      error: $('.compose-error', node), count: $('.count', node), post: $('button.post', node),
      feed: $('.feed', node), feedTitle: $('.feed-title', node), feedCount: $('.feed-count', node),
      empty: $('.empty', node),
    };
    r.ui.name.textContent = r.label;
    try { r.ui.url.textContent = new URL(r.url).host; } catch (e) { r.ui.url.textContent = r.url; }
    r.ui.feedTitle.textContent = `Home timeline, as seen in ${r.label}`;
    $('.cut-hint', node).textContent = `${r.label} still answers its own users, but changes from the other regions wait until it reconnects.`;
    wireColumn(r);
    return r;
  }

  function wireColumn(r) {
    const ui = r.ui;
    ui.form.addEventListener('submit', (ev) => { ev.preventDefault(); submitPost(r); });
    ui.textarea.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submitPost(r); }
    });
    ui.textarea.addEventListener('input', () => {
      const n = [...ui.textarea.value].length;
      ui.count.textContent = `${n}/500`;
      ui.count.classList.toggle('over', n > 500);
      ui.error.textContent = '';
    });

    ui.cutoff.addEventListener('change', () => setPaused(r, ui.cutoff.checked));

    ui.delay.addEventListener('input', () => { r.dragging = true; showDelay(r, Number(ui.delay.value)); });
    ui.delay.addEventListener('change', () => { r.dragging = false; setDelay(r, Number(ui.delay.value)); });
    ui.delay.addEventListener('blur', () => { r.dragging = false; });
  }

  function showDelay(r, ms) {
    r.ui.delayValue.textContent = `+${ms} ms`;
  }

  function showNotice(r, text, kind) {
    const n = r.ui.notice;
    n.textContent = text || '';
    n.hidden = !text;
    n.dataset.kind = kind || 'info';
  }

  function renderSwitch(r, paused) {
    r.ui.cutoff.checked = !!paused;
    r.ui.switchText.textContent = paused ? 'Cut off' : 'Connected';
  }

  async function setPaused(r, paused) {
    r.togglePending = true;
    r.ui.switchText.textContent = paused ? 'Cutting off…' : 'Reconnecting…';
    try {
      const s = await api(`${r.url}/v1/admin/replication`, { method: 'POST', body: { paused } });
      const now = s && typeof s.paused === 'boolean' ? s.paused : paused;
      renderSwitch(r, now);
      r.el.dataset.paused = String(now);
      if (r.repl) r.repl.paused = now;
      showNotice(r, '');
    } catch (e) {
      renderSwitch(r, !paused);
      showNotice(r, `Could not ${paused ? 'cut off' : 'reconnect'} ${r.label}: ${e.message}`, 'error');
    } finally {
      r.togglePending = false;
      r.toggleAt = Date.now();
    }
    pollSoon();
  }

  async function setDelay(r, ms) {
    r.delayPending = true;
    try {
      const s = await api(`${r.url}/v1/admin/replication`, { method: 'POST', body: { delay_ms: ms } });
      const now = s && Number.isFinite(s.delay_ms) ? s.delay_ms : ms;
      r.ui.delay.value = String(now);
      showDelay(r, now);
      if (r.repl) r.repl.delay_ms = now;
      showNotice(r, '');
    } catch (e) {
      showNotice(r, `Could not change ${r.label}'s distance: ${e.message}`, 'error');
    } finally {
      r.delayPending = false;
      r.delayAt = Date.now();
    }
    pollSoon();
  }

  function renderComposer(r) {
    const u = state.users[r.name];
    const ui = r.ui;
    ui.as.textContent = '';
    if (u) {
      ui.as.append('Posting as ', h('b', { text: u.display_name || u.name }), ' ', h('span', { class: 'handle', text: u.id }));
      ui.textarea.disabled = false;
      ui.post.disabled = false;
      ui.textarea.placeholder = `What's happening in ${r.label}?`;
      r.el.dataset.user = u.id;
    } else {
      ui.as.append(h('span', { class: 'muted', text: 'No demo user here yet' }));
      ui.textarea.disabled = true;
      ui.post.disabled = true;
      ui.textarea.placeholder = `Set up demo users to post from ${r.label}`;
      delete r.el.dataset.user;
    }
    renderEmpty(r);
  }

  function renderEmpty(r) {
    const n = r.posts.size;
    const u = state.users[r.name];
    r.ui.feedCount.textContent = n ? `${n} post${n === 1 ? '' : 's'}` : '';
    if (n) { r.ui.empty.hidden = true; return; }
    r.ui.empty.hidden = false;
    r.ui.empty.textContent = u
      ? 'Nothing here yet. Posts from every region will appear as they reach ' + r.label + '.'
      : 'Click “Set up demo users” to give ' + r.label + ' a local user who follows everyone.';
  }

  function setConn(r, kind) {
    r.el.dataset.stream = kind;
    const text = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'stream down', none: '' }[kind] || '';
    r.ui.conn.textContent = text;
    r.ui.conn.hidden = !text;
  }

  // ---------------------------------------------------------------- posts

  function postElement(r, item) {
    const origin = originOf(item);
    const local = origin === r.name;
    const li = h('li', { class: 'post ' + (local ? 'local' : 'remote'), 'data-id': item.id, 'data-origin': origin });
    li.style.setProperty('--origin', regionColor(origin));
    const author = String(item.author || '');
    const img = h('img', { class: 'pic', alt: '', src: pictureFor(String(item.id)), loading: 'lazy', decoding: 'async', draggable: 'false' });
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true', text: displayNameOf(author).charAt(0).toUpperCase() });
    avatar.style.background = regionColor(author.includes('@') ? author.slice(author.indexOf('@') + 1) : origin);
    const meta = h('div', { class: 'post-meta' },
      avatar,
      h('span', { class: 'who' },
        h('b', { class: 'author', text: displayNameOf(author) }),
        h('span', { class: 'handle', text: author })),
      h('span', { class: 'badge', title: `Written in ${regionLabel(origin)}`, text: regionLabel(origin) }));
    const text = h('p', { class: 'text', text: String(item.text || '') });
    const arrival = h('div', { class: 'arrival' });
    li.append(meta, img, text, arrival);
    fillArrival(r, li, item);
    return li;
  }

  function fillArrival(r, li, item) {
    const arrival = $('.arrival', li);
    const origin = originOf(item);
    const local = origin === r.name;
    const created = parseTime(item.created_at);
    const delivered = parseTime(item.delivered_at);
    arrival.textContent = '';
    if (Number.isNaN(created) || Number.isNaN(delivered)) {
      arrival.append(h('span', { class: 'lat pending', text: 'posted' }),
        h('span', { class: 'via', text: local ? `written here · ${clockTime(created)}` : `from ${regionLabel(origin)}` }));
      li.dataset.delay = '';
      return;
    }
    const d = delivered - created;
    li.dataset.delay = String(Math.round(d));
    arrival.title = `created ${item.created_at} in ${regionLabel(origin)}\narrived ${item.delivered_at} in ${r.label}`;
    const lat = h('span', { class: 'lat', text: formatDelay(d) });
    if (local) {
      arrival.append(lat, h('span', { class: 'via', text: `written here · ${clockTime(delivered)}` }));
    } else {
      const frac = Math.max(0.03, Math.min(1, d / 2000));
      const bar = h('span', { class: 'travel', 'aria-hidden': 'true' }, h('span', { style: `width:${(frac * 100).toFixed(1)}%` }));
      arrival.append(lat, h('span', { class: 'via', text: `travelled from ${regionLabel(origin)} · ${clockTime(delivered)}` }), bar);
    }
  }

  // Adds (or completes) one timeline item in column r; items are ordered by id, newest first.
  function addPost(r, item, highlight) {
    if (!item || typeof item.id !== 'string' || !item.id) return;
    const existing = r.posts.get(item.id);
    if (existing) {
      if (!existing.delivered_at && item.delivered_at) {
        Object.assign(existing, item);
        const li = r.ui.feed.querySelector(`li.post[data-id="${CSS.escape(item.id)}"]`);
        if (li) fillArrival(r, li, existing);
      }
      return;
    }
    const copy = { ...item };
    r.posts.set(copy.id, copy);
    const li = postElement(r, copy);
    let before = null;
    for (const child of r.ui.feed.children) {
      if (child.dataset.id < copy.id) { before = child; break; }
    }
    r.ui.feed.insertBefore(li, before);
    if (highlight) {
      li.classList.add('fresh');
      setTimeout(() => li.classList.remove('fresh'), FRESH_MS);
    }
    while (r.ui.feed.children.length > FEED_KEEP) {
      const last = r.ui.feed.lastElementChild;
      r.posts.delete(last.dataset.id);
      last.remove();
    }
    renderEmpty(r);
  }

  function removePost(r, id) {
    if (!r.posts.has(id)) return;
    r.posts.delete(id);
    const li = r.ui.feed.querySelector(`li.post[data-id="${CSS.escape(id)}"]`);
    if (li) {
      li.classList.add('gone');
      setTimeout(() => { li.remove(); renderEmpty(r); }, 400);
    }
    renderEmpty(r);
  }

  function clearFeed(r) {
    r.posts.clear();
    r.ui.feed.textContent = '';
    r.loadedOnce = false;
    renderEmpty(r);
  }

  async function submitPost(r) {
    const u = state.users[r.name];
    const ui = r.ui;
    const text = ui.textarea.value;
    if (!u) { ui.error.textContent = 'Set up demo users first.'; return; }
    if (!text.trim()) { ui.error.textContent = 'Write something first.'; return; }
    ui.post.disabled = true;
    ui.error.textContent = '';
    try {
      const post = await api(`${r.url}/v1/posts`, { method: 'POST', token: u.token, body: { text } });
      ui.textarea.value = '';
      ui.count.textContent = '0/500';
      // The write is acknowledged by the local region: show it now; the live stream
      // fills in its arrival time moments later.
      if (post && post.id) addPost(r, post, true);
    } catch (e) {
      ui.error.textContent = e.status === 0 ? `${r.label} is ${e.message}.` : e.message;
      if (e.status === 401) forgetUser(r, 'This region no longer knows the demo user (was the cluster reset?). Set up demo users again.');
    } finally {
      ui.post.disabled = !state.users[r.name];
      ui.textarea.focus();
    }
  }

  // ---------------------------------------------------------------- timeline + stream

  async function loadTimeline(r) {
    const u = state.users[r.name];
    if (!u) return;
    if (r.loading) { r.reloadWanted = true; return; } // one at a time; run again after
    r.loading = true;
    r.reloadWanted = false;
    const gen = r.gen;
    try {
      const page = await api(`${r.url}/v1/timeline?limit=${FEED_LIMIT}`, { token: u.token });
      if (gen !== r.gen) return;
      const items = page && Array.isArray(page.items) ? page.items : [];
      for (const item of items) addPost(r, item, r.loadedOnce);
      r.loadedOnce = true;
      r.lastError = '';
    } catch (e) {
      if (gen !== r.gen) return;
      if (e.status === 401) {
        forgetUser(r, `${r.label} does not know the stored demo user any more (was the cluster reset?). Set up demo users again.`);
      } else {
        r.lastError = e.message;
      }
    } finally {
      if (gen === r.gen) {
        r.loading = false;
        if (r.reloadWanted) loadTimeline(r);
      }
    }
  }

  function openStream(r) {
    const u = state.users[r.name];
    clearTimeout(r.esTimer);
    if (r.es) { r.es.close(); r.es = null; }
    if (!u || typeof EventSource === 'undefined') return;
    const gen = r.gen;
    const es = new EventSource(`${r.url}/v1/stream?access_token=${encodeURIComponent(u.token)}`);
    r.es = es;
    setConn(r, 'connecting');
    const parse = (ev) => { try { return JSON.parse(ev.data); } catch (e) { return null; } };
    es.addEventListener('open', () => {
      if (gen !== r.gen) return;
      setConn(r, 'live');
      if (r.streamBroken) { r.streamBroken = false; loadTimeline(r); } // catch up on anything missed
    });
    es.addEventListener('post', (ev) => { if (gen === r.gen) addPost(r, parse(ev), true); });
    es.addEventListener('delete', (ev) => {
      const d = parse(ev);
      if (gen === r.gen && d && typeof d.id === 'string') removePost(r, d.id);
    });
    es.addEventListener('message', (ev) => {
      const m = parse(ev);
      if (gen === r.gen && m && m.from) showNotice(r, `✉ New direct message from ${m.from}`, 'info');
    });
    es.addEventListener('error', () => {
      if (gen !== r.gen) return;
      r.streamBroken = true;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the region answered with an error): retry ourselves.
        setConn(r, 'offline');
        es.close();
        if (r.es === es) r.es = null;
        r.esTimer = setTimeout(() => { if (gen === r.gen) openStream(r); }, 3000);
      } else {
        setConn(r, 'reconnecting');
      }
    });
  }

  function startFeed(r) {
    stopFeed(r);
    if (!state.users[r.name]) return;
    openStream(r);
    loadTimeline(r);
  }

  function stopFeed(r) {
    r.gen++;
    clearTimeout(r.esTimer);
    if (r.es) { r.es.close(); r.es = null; }
    r.loading = false;
    r.reloadWanted = false;
    setConn(r, 'none');
  }

  function forgetUser(r, why) {
    delete state.users[r.name];
    state.ready = false;
    saveStore();
    stopFeed(r);
    clearFeed(r);
    renderComposer(r);
    renderSetup();
    if (why) showNotice(r, why, 'error');
  }

  // ---------------------------------------------------------------- setup

  function setSetupStatus(text, kind) {
    const el = $('#setup-status');
    el.textContent = text || '';
    el.dataset.kind = kind || 'info';
  }

  function renderSetup() {
    const btn = $('#setup');
    const have = state.regions.filter((r) => state.users[r.name]).length;
    const complete = state.ready && have === state.regions.length && have > 0;
    $('#reset').hidden = have === 0 || state.setupRunning;
    if (state.setupRunning) {
      btn.disabled = true;
      btn.textContent = 'Setting up…';
      document.body.dataset.setup = 'running';
    } else if (complete) {
      btn.disabled = true;
      btn.textContent = '✓ Demo users ready';
      document.body.dataset.setup = 'done';
    } else {
      btn.disabled = state.regions.length === 0;
      btn.textContent = have ? 'Finish setting up demo users' : 'Set up demo users';
      if (document.body.dataset.setup !== 'error') document.body.dataset.setup = 'none';
    }
    if (complete && !state.setupRunning) {
      const names = state.regions.map((r) => state.users[r.name].display_name || state.users[r.name].name);
      setSetupStatus(`${listJoin(names)} are following each other.`, 'ok');
    }
    renderTraveller();
  }

  function listJoin(xs) {
    if (xs.length <= 1) return xs.join('');
    return xs.slice(0, -1).join(', ') + ' and ' + xs[xs.length - 1];
  }

  async function register(r) {
    const [base, display] = r.person;
    for (let attempt = 0; attempt < 6; attempt++) {
      const name = attempt === 0 ? base : base + String(1000 + Math.floor(Math.random() * 9000));
      try {
        const u = await api(`${r.url}/v1/users`, { method: 'POST', body: { name, display_name: display } });
        if (!u || typeof u.id !== 'string' || typeof u.token !== 'string') throw new ApiError(0, 'bad_reply', 'unexpected reply to registration');
        return { id: u.id, name: u.name || name, display_name: u.display_name || display, region: u.region || r.name, url: r.url, token: u.token };
      } catch (e) {
        if (e.status === 409) continue; // name taken in this region: try another
        throw new Error(`${r.label}: ${e.status === 0 ? 'region ' + e.message : e.message}`);
      }
    }
    throw new Error(`${r.label}: could not find a free user name`);
  }

  async function runSetup() {
    if (state.setupRunning || state.regions.length === 0) return;
    state.setupRunning = true;
    document.body.dataset.setup = 'running';
    renderSetup();
    try {
      // 1. One user per region, registered in (and owned by) that region.
      for (const r of state.regions) {
        if (state.users[r.name]) continue;
        setSetupStatus(`Registering a user in ${r.label}…`);
        state.users[r.name] = await register(r);
        state.ready = false;
        saveStore();
        showNotice(r, '');
        renderComposer(r);
        startFeed(r);
      }

      // 2. Wait until every user has replicated to every other region.
      const users = state.regions.map((r) => state.users[r.name]);
      const pairs = [];
      for (const u of users) for (const r of state.regions) if (r.name !== u.region && r.url !== u.url) pairs.push([u, r]);
      let arrived = 0;
      let stop = false;
      const deadline = Date.now() + REPLICATION_WAIT_MS;
      setSetupStatus(`Waiting for the users to replicate… 0/${pairs.length}`);
      await Promise.all(pairs.map(async ([u, r]) => {
        for (;;) {
          if (stop) return;
          try {
            await api(`${r.url}/v1/users/${seg(u.id)}`, { timeout: 2500 });
            break;
          } catch (e) {
            if (e.status !== 404 && e.status !== 0) { stop = true; throw new Error(`${r.label}: ${e.message}`); }
            if (Date.now() > deadline) {
              stop = true;
              const why = r.repl && r.repl.paused ? `${r.label} is cut off: reconnect it and try again.`
                : e.status === 0 ? `${r.label} is unreachable.` : `Is ${r.label} cut off or far away?`;
              throw new Error(`${displayNameOf(u.id)} has not reached ${r.label} after ${REPLICATION_WAIT_MS / 1000} s. ${why}`);
            }
            await sleep(250);
          }
        }
        arrived++;
        setSetupStatus(`Waiting for the users to replicate… ${arrived}/${pairs.length}`);
      }));

      // 3. In its own region, every user follows every other user.
      setSetupStatus('Following each other…');
      for (const r of state.regions) {
        const me = state.users[r.name];
        for (const other of users) {
          if (other.id === me.id) continue;
          try {
            await api(`${r.url}/v1/following/${seg(other.id)}`, { method: 'PUT', token: me.token });
          } catch (e) {
            if (e.status === 401) forgetUser(r, `${r.label} does not know its demo user any more.`);
            throw new Error(`${me.display_name} could not follow ${other.display_name} in ${r.label}: ${e.message}`);
          }
        }
      }
      state.ready = true;
      saveStore();
      state.setupRunning = false;
      document.body.dataset.setup = 'done';
      renderSetup();
      // Follows backfill the timelines: reload them.
      for (const r of state.regions) loadTimeline(r);
    } catch (e) {
      state.setupRunning = false;
      document.body.dataset.setup = 'error';
      renderSetup();
      setSetupStatus(e.message, 'error');
    }
  }

  function resetDemo(ev) {
    if (ev) ev.preventDefault();
    state.users = {};
    state.ready = false;
    saveStore();
    for (const r of state.regions) {
      stopFeed(r);
      clearFeed(r);
      renderComposer(r);
      showNotice(r, '');
    }
    document.body.dataset.setup = 'none';
    setSetupStatus('Forgot the demo users (they still exist on the server).');
    renderSetup();
  }

  // ---------------------------------------------------------------- status polling

  let pollTimer = 0;
  let pollRunning = false;
  let pollAgain = false;

  function pollSoon() {
    if (pollRunning) { pollAgain = true; return; }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(pollLoop, 50);
  }

  async function pollLoop() {
    clearTimeout(pollTimer);
    pollRunning = true;
    const started = Date.now();
    try {
      await Promise.all(state.regions.map(pollRegion));
      renderBanner();
      renderTraveller();
    } catch (e) {
      // a rendering bug must not stop the loop
      console.error(e);
    } finally {
      pollRunning = false;
    }
    const wait = pollAgain ? 50 : Math.max(100, POLL_MS - (Date.now() - started));
    pollAgain = false;
    pollTimer = setTimeout(pollLoop, wait);
  }

  async function pollRegion(r) {
    const started = Date.now();
    const [d, rep] = await Promise.allSettled([
      api(`${r.url}/v1/digest`, { timeout: 2500 }),
      api(`${r.url}/v1/replication`, { timeout: 2500 }),
    ]);
    r.digest = d.status === 'fulfilled' && d.value && typeof d.value.digest === 'string' ? d.value : null;
    r.repl = rep.status === 'fulfilled' && rep.value ? rep.value : null;
    r.healthy = d.status === 'fulfilled' || rep.status === 'fulfilled';
    r.el.dataset.health = r.healthy ? 'ok' : 'down';
    renderRegionStatus(r, started);

    // While the live stream is down, refresh the timeline now and then instead.
    const streamOpen = r.es && r.es.readyState === EventSource.OPEN;
    if (state.users[r.name] && !streamOpen && r.healthy && Date.now() - r.lastFallbackLoad > FALLBACK_POLL_MS) {
      r.lastFallbackLoad = Date.now();
      loadTimeline(r);
    }
  }

  // started: when this poll began; settings the user changed since then are newer than
  // what the poll read, so they are not overwritten.
  function renderRegionStatus(r, started) {
    const ui = r.ui;
    if (!r.healthy) {
      ui.records.textContent = ' · unreachable';
      ui.records.className = 'region-records down';
      ui.peers.textContent = '';
      ui.peers.append(h('li', { class: 'peer down' }, h('span', { class: 'peer-dot' }),
        `${r.label} is not answering; retrying every second.`));
      return;
    }
    ui.records.className = 'region-records';
    ui.records.textContent = r.digest ? ` · ${r.digest.records} records` : '';
    const rep = r.repl;
    if (!rep) { ui.peers.textContent = ''; return; }

    const paused = !!rep.paused;
    if (!r.togglePending && r.toggleAt < started) {
      r.el.dataset.paused = String(paused);
      renderSwitch(r, paused);
    }
    const delay = Number.isFinite(rep.delay_ms) ? rep.delay_ms : 0;
    if (!r.dragging && !r.delayPending && r.delayAt < started) {
      ui.delay.value = String(delay);
      showDelay(r, delay);
    }

    ui.peers.textContent = '';
    const peers = Array.isArray(rep.peers) ? rep.peers : [];
    for (const p of peers) {
      const st = paused && p.state !== 'disconnected' ? 'paused' : (p.state || 'unknown');
      const behind = Number(p.behind) || 0;
      const li = h('li', { class: `peer ${st}`, 'data-peer': p.name },
        h('span', { class: 'peer-dot', title: st }),
        h('span', { class: 'peer-name' }, 'from ', h('b', { text: regionLabel(p.name) })),
        h('span', { class: 'peer-state', text: st }),
        h('span', { class: 'peer-lag', title: 'replication lag, median / 99th percentile' },
          Number.isFinite(p.lag_ms_p50) ? `${Math.round(p.lag_ms_p50)} ms` : '–',
          h('small', { text: Number.isFinite(p.lag_ms_p99) ? ` p99 ${Math.round(p.lag_ms_p99)}` : '' })),
        h('span', { class: 'peer-behind' + (behind > 0 ? ' lagging' : ''), text: behind > 0 ? `${behind} behind` : 'up to date' }));
      // Anti-entropy: records this region got by comparing Merkle trees with
      // the peer (ones the log lost), counted since the region started.
      const repaired = p.repair ? Number(p.repair.records_received) || 0 : 0;
      if (repaired > 0) {
        li.append(h('span', { class: 'peer-repair', title: 'records the log lost, brought back by comparing Merkle trees',
          text: `repaired ${repaired} record${repaired === 1 ? '' : 's'}` }));
      }
      ui.peers.append(li);
    }
  }

  function renderBanner() {
    const banner = $('#banner');
    const regions = state.regions;
    if (!regions.length) return;
    const up = regions.filter((r) => r.digest);
    const down = regions.filter((r) => !r.digest);
    const first = up.length ? up[0].digest.digest : null;
    const converged = down.length === 0 && up.every((r) => r.digest.digest === first);
    const maxRecords = Math.max(0, ...up.map((r) => Number(r.digest.records) || 0));
    const now = Date.now();

    let headline;
    if (converged) {
      if (state.divergedSince) {
        state.lastConvergedAfter = now - state.divergedSince;
        state.convergedAt = now;
        state.divergedSince = 0;
      }
      const n = regions.length;
      headline = `${n === 1 ? 'The only region is' : `All ${n} regions`} converged — ${maxRecords} record${maxRecords === 1 ? '' : 's'}, identical everywhere`;
    } else {
      if (!state.divergedSince) state.divergedSince = now;
      if (down.length) {
        headline = `${listJoin(down.map((r) => r.label))} ${down.length === 1 ? 'is' : 'are'} unreachable — convergence cannot be confirmed`;
      } else {
        const paused = regions.filter((r) => r.repl && r.repl.paused);
        headline = paused.length
          ? `Regions have diverged — ${listJoin(paused.map((r) => r.label))} ${paused.length === 1 ? 'is' : 'are'} cut off`
          : 'Regions have diverged — changes are still travelling';
      }
    }

    banner.dataset.state = converged ? 'converged' : 'diverged';
    $('.state-pill', banner).textContent = converged ? 'converged' : 'diverged';
    $('.headline', banner).textContent = headline;

    const detail = $('.banner-detail', banner);
    detail.textContent = '';
    for (const r of regions) {
      const chip = h('span', { class: 'rchip', 'data-for': r.name });
      chip.style.setProperty('--accent', r.color);
      chip.append(h('span', { class: 'rchip-dot', 'aria-hidden': 'true' }), h('b', { text: r.label }));
      if (!r.digest) {
        chip.classList.add('down');
        chip.append(h('span', { text: 'unreachable' }));
      } else {
        const recs = Number(r.digest.records) || 0;
        chip.append(h('span', { text: `${recs} records` }));
        if (!converged && recs < maxRecords) chip.append(h('span', { class: 'delta', text: `−${maxRecords - recs}` }));
        chip.append(h('code', { title: r.digest.digest, text: r.digest.digest.slice(0, 8) }));
        if (!converged && r.repl) {
          const lagging = (Array.isArray(r.repl.peers) ? r.repl.peers : []).filter((p) => (Number(p.behind) || 0) > 0);
          if (lagging.length) {
            const one = (p) => `${p.behind} from ${regionLabel(p.name)}` +
              (Number.isFinite(p.lag_ms_p50) ? ` (lag ~${Math.round(p.lag_ms_p50)} ms)` : '');
            chip.append(h('span', { class: 'behind', text: 'missing ' + lagging.map(one).join(', ') }));
          }
          if (r.repl.paused) chip.append(h('span', { class: 'tag', text: 'cut off' }));
        }
      }
      detail.append(chip);
    }
    if (converged && state.lastConvergedAfter && now - state.convergedAt < 15000) {
      detail.append(h('span', { class: 'since', text: `back in sync after ~${(state.lastConvergedAfter / 1000).toFixed(1)} s apart` }));
    } else if (!converged && state.divergedSince) {
      const s = (now - state.divergedSince) / 1000;
      if (s >= 2) detail.append(h('span', { class: 'since', text: `apart for ${s.toFixed(0)} s` }));
    }
  }

  // ---------------------------------------------------------------- traveller

  // The traveller writes a post in region "from" as that region's demo user (optionally
  // with ?ack=all), then asks region "to" for it twice at the same moment: once plainly,
  // once with the Session-Token the write answered and Session-Wait-Ms. The plain read
  // answers from whatever "to" has; the other is held by "to" until it has applied the
  // post, or answered 503 session_behind once the wait is over. Each step card keeps its
  // outcome in data- attributes (outcome, status, ms) for the browser test.

  const tv = { ui: null, from: '', to: '', running: false, ticker: 0 };

  function fmtMs(ms) {
    return `${Math.round(ms).toLocaleString('en-US')} ms`;
  }

  function setupTraveller() {
    const root = $('#traveller');
    const ui = tv.ui = {
      root, form: $('form', root), from: $('#traveller-from'), to: $('#traveller-to'),
      ack: $('#traveller-ack'), go: $('#traveller-go'), note: $('#traveller-note'),
      steps: $('#traveller-steps'), lesson: $('#traveller-lesson'),
    };
    if (state.regions.length < 2) { root.hidden = true; return; } // nowhere to travel to
    for (const sel of [ui.from, ui.to]) {
      sel.textContent = '';
      for (const r of state.regions) sel.append(h('option', { value: r.name, text: r.label }));
    }
    tv.from = state.regions[0].name;
    tv.to = state.regions[1].name;
    ui.from.value = tv.from;
    ui.to.value = tv.to;
    ui.from.addEventListener('change', () => pickTravelRegion('from'));
    ui.to.addEventListener('change', () => pickTravelRegion('to'));
    ui.form.addEventListener('submit', (ev) => { ev.preventDefault(); runTraveller(); });
    root.hidden = false;
    renderTraveller();
  }

  // Picking, in one list, the region the other list holds swaps the two.
  function pickTravelRegion(which) {
    const ui = tv.ui;
    const other = which === 'from' ? 'to' : 'from';
    const v = ui[which].value;
    if (v === tv[other]) {
      tv[other] = tv[which];
      ui[other].value = tv[other];
    }
    tv[which] = v;
    renderTraveller();
  }

  // The button, and the line under the form: who posts, and how far apart the regions are.
  function renderTraveller() {
    const ui = tv.ui;
    if (!ui || ui.root.hidden) return;
    const from = state.byName.get(tv.from);
    const to = state.byName.get(tv.to);
    const u = from && state.users[from.name];
    ui.go.disabled = tv.running || !u || !to || from === to;
    ui.go.textContent = tv.running ? 'Travelling…' : 'Post and read';
    if (!from || !to) { ui.note.textContent = ''; return; }
    if (!u) {
      ui.note.textContent = `Set up demo users first: the traveller posts as the demo user of ${from.label}.`;
      return;
    }
    ui.note.textContent = `Posts as ${u.display_name || u.name} (${u.id}). ${distanceNote(from, to)}`;
  }

  function distanceNote(from, to) {
    if (to.healthy === false) return `${to.label} is not answering.`;
    const rep = to.repl;
    if (!rep) return '';
    if (rep.paused) {
      return `${to.label} is cut off, so the post cannot reach it: the read with the token will wait ` +
        `${TRAVEL_WAIT_MS / 1000} s and then give up.`;
    }
    const p = (Array.isArray(rep.peers) ? rep.peers : []).find((x) => x.name === from.name);
    const d = p && Number.isFinite(p.delay_ms) ? p.delay_ms : 0;
    if (d < 500) {
      return `${to.label} is only ${fmtMs(d)} away from ${from.label}, so the post gets there almost at once. ` +
        `Drag ${to.label}'s Distance to 1,500 ms to see the difference clearly.`;
    }
    return `${to.label} is ${fmtMs(d)} away from ${from.label} (its Distance): the post takes at least that long to get there.`;
  }

  // Fills one step card. o: {title, outcome, status, ms, result, time, detail, attrs};
  // detail may be a string or a list of strings and nodes.
  function showStep(el, o) {
    for (const k of Object.keys(el.dataset)) if (k !== 'step') delete el.dataset[k];
    el.textContent = '';
    el.dataset.outcome = o.outcome;
    el.dataset.status = o.status ? String(o.status) : '';
    el.dataset.ms = Number.isFinite(o.ms) ? String(Math.round(o.ms)) : '';
    for (const [k, v] of Object.entries(o.attrs || {})) el.dataset[k] = v;
    el.append(
      h('span', { class: 'tv-title', text: o.title }),
      h('span', { class: 'tv-result' }, o.status ? h('b', { class: 'tv-code', text: String(o.status) }) : null, ' ', o.result),
      h('span', { class: 'tv-time', text: o.time || '' }));
    if (o.detail) el.append(h('span', { class: 'tv-detail' }, o.detail));
  }

  // request() with the time it took; never rejects: {res, ms} or {err, ms}.
  async function timedRequest(url, opts) {
    const t0 = performance.now();
    try {
      const res = await request(url, { timeout: TRAVEL_TIMEOUT_MS, ...opts });
      return { res, ms: performance.now() - t0 };
    } catch (e) {
      return { err: e, ms: performance.now() - t0 };
    }
  }

  function tokenCode(token) {
    return h('code', { class: 'tv-token', title: token, text: token.length > 24 ? token.slice(0, 22) + '…' : token });
  }

  function regionList(csv) {
    return listJoin(String(csv).split(',').map((x) => x.trim()).filter(Boolean).map(regionLabel));
  }

  // While a step waits, its time line counts up, so a held answer is seen being held.
  function startTicker(els, t0) {
    clearInterval(tv.ticker);
    tv.ticker = setInterval(() => {
      for (const el of els) {
        if (el.dataset.outcome !== 'pending') continue;
        const t = $('.tv-time', el);
        if (t) t.textContent = `waiting… ${fmtMs(performance.now() - t0)}`;
      }
    }, 100);
  }

  async function runTraveller() {
    const from = state.byName.get(tv.from);
    const to = state.byName.get(tv.to);
    const u = from && state.users[from.name];
    if (tv.running || !u || !to || from === to) return;
    const ui = tv.ui;
    const ack = ui.ack.checked;
    const step = {
      post: $('[data-step="post"]', ui.steps),
      plain: $('[data-step="plain"]', ui.steps),
      token: $('[data-step="token"]', ui.steps),
    };
    const titles = {
      post: `1 · Post in ${from.label}`,
      plain: `2 · Read in ${to.label} without the token`,
      token: `3 · Read in ${to.label} with the token`,
    };
    tv.running = true;
    ui.root.dataset.state = 'running';
    ui.steps.hidden = false;
    ui.lesson.hidden = true;
    delete ui.steps.dataset.postId;
    showStep(step.post, { title: titles.post, outcome: 'pending', result: ack ? 'posting, until every region has it…' : 'posting…' });
    for (const k of ['plain', 'token']) showStep(step[k], { title: titles[k], outcome: 'waiting', result: 'asked once the post is written' });
    renderTraveller();
    try {
      // 1. The write, as the demo user of "from".
      const text = `✈ Posted in ${from.label}, then read in ${to.label} · ${clockTime(Date.now())}`;
      startTicker([step.post], performance.now());
      const w = await timedRequest(`${from.url}/v1/posts${ack ? '?ack=all' : ''}`,
        { method: 'POST', token: u.token, body: { text } });
      if (w.err || (w.res.status !== 201 && w.res.status !== 202) || !w.res.data || !w.res.data.id) {
        const e = w.err || errorOf(w.res);
        showStep(step.post, { title: titles.post, outcome: 'error', status: e.status, ms: w.ms,
          result: e.status ? 'not posted' : 'no answer', time: fmtMs(w.ms), detail: e.message });
        for (const k of ['plain', 'token']) showStep(step[k], { title: titles[k], outcome: 'skipped', result: 'not asked: nothing was posted' });
        if (e.status === 401) forgetUser(from, `${from.label} does not know its demo user any more. Set up demo users again.`);
        ui.root.dataset.state = 'error';
        return;
      }
      const post = w.res.data;
      const token = w.res.headers.get('Session-Token') || '';
      const ackedBy = w.res.headers.get('Acked-By') || '';
      addPost(from, post, true);
      ui.steps.dataset.postId = post.id;
      let result = 'posted';
      let time = `answered by ${from.label} in ${fmtMs(w.ms)}`;
      const detail = [];
      if (ack && w.res.status === 201) {
        result = 'posted, and every region has it';
        time = `answered after ${fmtMs(w.ms)}`;
        detail.push(`Acknowledged by ${regionList(ackedBy)}. `);
      } else if (ack) {
        result = 'accepted, still on its way';
        time = `answered after ${fmtMs(w.ms)}`;
        detail.push(`Only ${regionList(ackedBy)} had it when ${from.label} stopped waiting. `);
      }
      if (token) detail.push('Session-Token ', tokenCode(token));
      else detail.push('The answer carried no Session-Token.');
      showStep(step.post, { title: titles.post, outcome: 'ok', status: w.res.status, ms: w.ms, result, time, detail,
        attrs: { acked: ackedBy } });

      // 2 and 3. Both reads leave at the same moment; each card fills in as its answer comes.
      const url = `${to.url}/v1/posts/${seg(post.id)}`;
      for (const k of ['plain', 'token']) showStep(step[k], { title: titles[k], outcome: 'pending', result: `asking ${to.label}…` });
      startTicker([step.plain, step.token], performance.now());
      const showPlain = (plain) => {
        if (!plain.err && plain.res.status === 200) {
          showStep(step.plain, { title: titles.plain, outcome: 'found', status: 200, ms: plain.ms, result: 'already there',
            time: `answered in ${fmtMs(plain.ms)}`, detail: `The post had reached ${to.label} before you asked.` });
        } else if (!plain.err && plain.res.status === 404) {
          showStep(step.plain, { title: titles.plain, outcome: 'missing', status: 404, ms: plain.ms, result: 'not there yet',
            time: `answered in ${fmtMs(plain.ms)}`,
            detail: `${to.label} answered at once from its own copy, which did not have the post yet.` });
        } else {
          const e = plain.err || errorOf(plain.res);
          showStep(step.plain, { title: titles.plain, outcome: 'error', status: e.status, ms: plain.ms,
            result: e.status ? 'unexpected answer' : 'no answer', time: fmtMs(plain.ms), detail: e.message });
        }
        return plain;
      };
      const [plain, held] = await Promise.all([
        timedRequest(url).then(showPlain),
        token ? timedRequest(url, { headers: { 'Session-Token': token, 'Session-Wait-Ms': String(TRAVEL_WAIT_MS) } }) : null,
      ]);
      const plainMissing = !plain.err && plain.res.status === 404;

      let lesson = '';
      if (!held) {
        showStep(step.token, { title: titles.token, outcome: 'skipped', result: 'not asked: there was no token' });
      } else if (!held.err && held.res.status === 200) {
        const waited = plainMissing;
        showStep(step.token, { title: titles.token, outcome: 'found', status: 200, ms: held.ms,
          result: 'found it', time: waited ? `answered after ${fmtMs(held.ms)}` : `answered in ${fmtMs(held.ms)}`,
          detail: waited ? `${to.label} held the answer until it had applied the post: it waited for replication.`
            : 'Nothing to wait for: the post was already there.',
          attrs: { waited: String(waited) } });
        if (waited) {
          lesson = `Without the token, ${to.label} answered at once from what it had, and your post was not there yet: ` +
            `that is eventual consistency. With the token, ${to.label} knew what you had written and held its answer ` +
            `${fmtMs(held.ms)} until the post arrived, so you always see your own posts, in any region.`;
        } else if (ack && w.res.status === 201) {
          lesson = `With ack=all, ${from.label} answered only once every region had the post (${fmtMs(w.ms)}), ` +
            'so both reads found it at once. The wait moved from the read to the write.';
        } else {
          lesson = `The post reached ${to.label} before you read it, so both reads found it. ` +
            `Drag ${to.label}'s Distance up to 1,500 ms and try again.`;
        }
      } else {
        const e = held.err || errorOf(held.res);
        const behind = e.code === 'session_behind';
        showStep(step.token, { title: titles.token, outcome: behind ? 'behind' : 'error', status: e.status, ms: held.ms,
          result: behind ? 'still not there' : e.status ? 'unexpected answer' : 'no answer',
          time: `answered after ${fmtMs(held.ms)}`,
          detail: behind ? `${to.label} waited ${TRAVEL_WAIT_MS / 1000} s, then said it has not caught up yet ` +
            '(session_behind) rather than answer without your post.' : e.message,
          attrs: { code: e.code || '' } });
        if (behind) {
          lesson = `${to.label} could not catch up within ${TRAVEL_WAIT_MS / 1000} s (is it cut off?). ` +
            'With the token it said so, instead of showing you a page without your post. Reconnect it and try again.';
        }
      }
      ui.lesson.textContent = lesson;
      ui.lesson.hidden = !lesson;
      ui.root.dataset.state = 'done';
    } catch (e) {
      ui.root.dataset.state = 'error'; // a bug here: say so instead of spinning
      ui.lesson.textContent = `The traveller got lost: ${e.message}`;
      ui.lesson.hidden = false;
      console.error(e);
    } finally {
      clearInterval(tv.ticker);
      tv.running = false;
      renderTraveller();
    }
  }

  // ---------------------------------------------------------------- boot

  async function discover() {
    const boot = $('#boot');
    for (let attempt = 0; ; attempt++) {
      try {
        if (location.protocol === 'file:') throw new ApiError(0, 'file', 'this page must be opened from a driftfeed region, e.g. http://127.0.0.1:8081/');
        const c = await api(`${location.origin}/v1/cluster`);
        const all = c && Array.isArray(c.regions) ? c.regions.filter((x) => x && x.name && x.url) : [];
        // Demo users' tokens only go to regions whose announcement was signed
        // (or this one): a URL anyone could write into Redis is not followed.
        const list = all.filter((x) => x.authenticated === true || x.name === c.self);
        if (!list.length) throw new ApiError(0, 'empty', 'the cluster lists no regions yet');
        boot.hidden = list.length === all.length;
        if (!boot.hidden) boot.textContent = `${all.length - list.length} announced region(s) not shown: their announcement is not signed (start every region with --key-dir).`;
        return list;
      } catch (e) {
        boot.hidden = false;
        boot.textContent = `Looking for the regions of this cluster… (${e.message}; retrying)`;
        await sleep(Math.min(5000, 1000 + attempt * 500));
      }
    }
  }

  async function main() {
    loadStore();
    $('#setup').addEventListener('click', runSetup);
    $('#reset').addEventListener('click', resetDemo);
    renderSetup();

    const list = await discover();
    const container = $('#regions');
    list.forEach((entry, i) => {
      const r = makeRegion(entry, i);
      if (state.byName.has(r.name)) return;
      state.regions.push(r);
      state.byName.set(r.name, r);
      container.append(r.el);
    });
    container.style.setProperty('--n', String(state.regions.length));

    // Keep only stored users that belong to a region of this cluster at the same URL.
    for (const [name, u] of Object.entries(state.users)) {
      const r = state.byName.get(name);
      if (!r || !u || typeof u.token !== 'string' || (u.url && u.url !== r.url)) delete state.users[name];
    }
    saveStore();

    for (const r of state.regions) {
      renderComposer(r);
      startFeed(r);
    }
    setupTraveller();
    renderSetup();
    pollLoop();
  }

  main();
})();
