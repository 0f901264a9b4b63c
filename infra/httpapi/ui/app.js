// The kitchen UI: plain JavaScript, no build step. State comes from the REST
// API on (re)connect, a page at a time (the orders in the works, and the
// dashboard's first page with "Load more"), and then live from one
// Server-Sent Events stream (GET /api/v1/notifications) for the whole page.
//
// With authentication on, the user pastes a bearer token once; it is kept in
// sessionStorage (this tab only) and sent in the Authorization header of
// every request. The stream is read with fetch() rather than EventSource,
// because EventSource cannot send headers and the token must never travel
// in a URL (where logs, history and Referer would keep it).
'use strict';

(() => {
  const PRICES = { S: 150, M: 200, L: 250, XL: 300 };
  // The kitchen comes from the server (GET /api/v1/config: the pipeline's
  // kitchen rows): the order states in flow order, and each station with
  // the state its queue holds, the state its step records, the REST path
  // that reports it and the notification that brings it work. From them:
  // one board per station, its button's words, its colour.
  let STATUSES = [];
  let RANK = {}; // state -> place in the flow (the two unshipped ends share the last)
  let STATIONS = [];
  let EVENTS = ['OrderStatusChanged'];
  let OPEN = []; // the states an order is still in the works in: reloaded on every connect
  let COLOURS = {}; // kitchen state -> its station's colour
  let CANCELLABLE = []; // the states a customer may cancel in
  let ROLES = []; // what the signed-in caller may do (GET /api/v1/me)
  let viewing = ''; // the order the order page shows; '' on the kitchen
  const PALETTE = ['#c78a00', '#c2501a', '#b0306a', '#5b3fa8', '#1f7a6d', '#2f5fa8', '#8a5a2b'];
  const MAX_ROWS = 200;
  const MAX_ACTIVITY = 30;
  const MAX_RECENT = 5;
  const PAGE = 100; // orders per request

  const $ = (sel, root = document) => root.querySelector(sel);
  const orders = new Map(); // orderId -> order (as the REST API shows it)
  const recent = new Map(); // station -> order ids lately through it
  const fresh = new Set(); // orderId@station just announced by an Inform* notification
  const TOKEN_KEY = 'cupcake-factory.token';
  let manual = false;
  let authRequired = false;
  let running = false; // the boards are loaded and the stream is wanted
  let stream = null; // the AbortController of the current stream
  let lastEventId = '';
  let retryMs = 2000;
  let loaded = false; // the dashboard's first page is in
  let moreOrders = ''; // the path of the dashboard's next page

  const money = (cents) => (Number(cents || 0) / 100).toFixed(2);
  const time = (t) => (t ? new Date(t).toLocaleTimeString() : '');
  const itemsText = (items) => (items || []).map((i) => `${i.quantity} × ${i.size} ${i.flavour}`).join(', ');
  const staff = () => $('#staff').value.trim() || 'staff';
  const capital = (w) => w.charAt(0).toUpperCase() + w.slice(1);
  // shade moves a #rrggbb colour a fraction f of the way to grey level to.
  const shade = (hex, to, f) => '#' + [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16);
    return Math.round(c + (to - c) * f).toString(16).padStart(2, '0');
  }).join('');
  // orderLink is an order id that opens the order's page.
  const orderLink = (id, cls) => el('a', { href: `#/orders/${encodeURIComponent(id)}`, class: cls || 'order-link' }, el('code', { text: id }));

  // badge is a state's label, in its station's colour for a kitchen state.
  function badge(tag, st, ...children) {
    const e = el(tag, { class: 'status', 'data-status': st }, ...children);
    if (COLOURS[st]) {
      e.style.setProperty('--tint', shade(COLOURS[st], 255, 0.84));
      e.style.setProperty('--ink', shade(COLOURS[st], 0, 0.35));
    }
    return e;
  }

  // kitchen takes the server's description of the kitchen and draws a
  // board per station. The last station's step ships the order.
  function kitchen(cfg) {
    STATUSES = cfg.statuses || [];
    RANK = Object.fromEntries(STATUSES.map((st, i) => [st, Math.min(i, STATUSES.indexOf('shipped') + 1 || i)]));
    STATIONS = (cfg.stations || []).map((s, i, all) => {
      const last = i === all.length - 1;
      return {
        ...s, path: s.route, colour: PALETTE[i % PALETTE.length],
        action: capital(s.route) + (last ? ' & ship' : ''), done: last ? 'shipped' : s.records,
      };
    });
    EVENTS = [...STATIONS.map((s) => s.inform), 'OrderStatusChanged'];
    OPEN = ['created', ...STATIONS.map((s) => s.queue), ...STATIONS.slice(-1).map((s) => s.records)];
    for (const s of STATIONS) recent.set(s.name, []);
    COLOURS = Object.fromEntries(STATIONS.map((s) => [s.records, s.colour]));
    CANCELLABLE = cfg.cancellable || [];
    $('#board-grid').replaceChildren(...STATIONS.map((s) => {
      const title = capital(s.name);
      const board = el('section', { class: 'board', id: `board-${s.name}`, 'data-station': s.name, 'aria-labelledby': `h-${s.name}` },
        el('h3', { id: `h-${s.name}`, tabIndex: -1 }, el('span', { class: 'icon', 'aria-hidden': 'true' }), `${title} `, el('span', { class: 'count', 'data-count': '' }, '0')),
        el('p', { class: 'waiting', text: `Waiting: ${s.queue} orders` }),
        el('ul', { class: 'queue', 'aria-label': `${title} queue` }),
        el('details', { class: 'recent' }, el('summary', { text: `Recently ${s.done}` }), el('ul')));
      board.style.setProperty('--station', s.colour);
      return board;
    }));
  }

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'type') e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  function headers(extra) {
    const h = { Accept: 'application/json', ...extra };
    if (token()) h.Authorization = `Bearer ${token()}`;
    return h;
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      headers: headers(body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
    let data = null;
    try { data = await res.json(); } catch { /* no body */ }
    if (res.status === 401 && authRequired) signIn('Your token was not accepted; sign in again.');
    if (!res.ok) throw new Error((data && data.error) || `${method} ${path}: HTTP ${res.status}`);
    return data;
  }

  // merge keeps the newest view of an order: a snapshot and the stream can
  // arrive in either order, so an older state never overwrites a newer one.
  function merge(o) {
    const cur = orders.get(o.orderId);
    if (cur) {
      const a = Date.parse(o.updatedAt) || 0;
      const b = Date.parse(cur.updatedAt) || 0;
      if (a < b || (a === b && (RANK[o.status] ?? 0) < (RANK[cur.status] ?? 0))) return false;
      orders.set(o.orderId, { ...cur, ...o, createdAt: cur.createdAt || o.createdAt });
    } else {
      orders.set(o.orderId, { createdAt: o.updatedAt, ...o });
    }
    return true;
  }

  // refresh loads the work in hand: the first page of each open state (the
  // stations' queues among them). On the first connect it also loads the
  // first page of all orders, oldest first, for the dashboard; "Load more"
  // follows its next. A reconnect reloads only the open states: the stream
  // brings the rest, and nothing ever walks every order.
  async function refresh(first) {
    const lists = await Promise.all([
      ...(first ? [api('GET', `/api/v1/orders?limit=${PAGE}`)] : []),
      ...OPEN.map((st) => api('GET', `/api/v1/orders?status=${st}&limit=${PAGE}`)),
    ]);
    for (const l of lists) for (const o of l.orders) merge(o);
    if (first) setMore(lists[0].next);
    render();
  }

  function setMore(next) {
    moreOrders = next || '';
    $('#more-orders').hidden = !moreOrders;
  }

  async function loadMore() {
    if (!moreOrders) return;
    const button = $('#more-orders');
    button.disabled = true;
    try {
      const l = await api('GET', moreOrders);
      for (const o of l.orders) merge(o);
      setMore(l.next);
      render();
    } catch (err) {
      log(`Could not load more orders: ${err.message}`, 'failed');
    } finally {
      button.disabled = false;
    }
  }

  function onNotification(ev) {
    let d;
    try { d = JSON.parse(ev.data); } catch { return; }
    const station = STATIONS.find((s) => s.inform === ev.type);
    if (station) {
      fresh.add(`${d.orderId}@${station.name}`);
      setTimeout(() => { fresh.delete(`${d.orderId}@${station.name}`); render(); }, 4000);
      log(` is ready for the ${station.name}`, undefined, d.orderId);
    } else {
      const from = STATIONS.find((s) => s.queue === d.previous);
      if (from) {
        const list = recent.get(from.name).filter((id) => id !== d.orderId);
        list.unshift(d.orderId);
        recent.set(from.name, list.slice(0, MAX_RECENT));
      }
      log(`: ${d.previous ? d.previous + ' → ' : ''}${d.status}${d.by ? ' by ' + d.by : ''}${d.reason ? ' (' + d.reason + ')' : ''}`, d.status, d.orderId);
    }
    if (d.customerId === $('#customer').value.trim() && ['approved', 'cancelled', 'failed'].includes(d.status)) showCustomer();
    merge({
      orderId: d.orderId, customerId: d.customerId, status: d.status, reason: d.reason,
      amount: d.amount, items: d.items, updatedAt: d.at, by: d.by,
    });
    render();
    if (viewing && d.orderId === viewing) loadOrder();
  }

  function log(text, status, orderId) {
    const list = $('#activity');
    list.prepend(el('li', { 'data-status': status }, el('time', { text: new Date().toLocaleTimeString() }), ' ', orderId ? orderLink(orderId) : null, text));
    while (list.children.length > MAX_ACTIVITY) list.lastElementChild.remove();
  }

  function setConnection(state, text) {
    const c = $('#connection');
    if (c.dataset.state === state) return;
    c.dataset.state = state;
    c.textContent = text;
  }

  // connect reads the notification stream with fetch(), so that it can
  // carry the Authorization header, and does what EventSource would: parse
  // the messages, remember the last id, reconnect after `retry` sending
  // Last-Event-ID.
  async function connect() {
    if (stream) stream.abort();
    const ctrl = new AbortController();
    stream = ctrl;
    let wait = retryMs;
    try {
      const h = headers({ Accept: 'text/event-stream' });
      if (lastEventId) h['Last-Event-ID'] = lastEventId;
      const res = await fetch('/api/v1/notifications', { headers: h, cache: 'no-store', signal: ctrl.signal });
      if (res.status === 401 && authRequired) {
        signIn('Your token was not accepted; sign in again.');
        return;
      }
      if (res.status === 403) {
        setConnection('down', 'Not allowed');
        log('This token may not watch the kitchen.', 'failed');
        return;
      }
      if (!res.ok || !res.body) {
        wait = Math.max(wait, (Number(res.headers.get('Retry-After')) || 0) * 1000);
        throw new Error(`HTTP ${res.status}`);
      }
      setConnection('live', 'Live');
      refresh(!loaded).then(() => { loaded = true; }).catch((err) => log(`Could not load orders: ${err.message}`, 'failed'));
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          dispatch(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (err) {
      if (ctrl.signal.aborted) return;
    }
    if (ctrl.signal.aborted || stream !== ctrl) return;
    setConnection('connecting', 'Reconnecting…');
    setTimeout(() => { if (stream === ctrl && running) connect(); }, wait);
  }

  // dispatch handles one Server-Sent Events message.
  function dispatch(block) {
    let name = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (id !== null) lastEventId = id;
    if (data.length && EVENTS.includes(name)) onNotification({ type: name, data: data.join('\n') });
  }

  // Sign-in: a token pasted once, checked against a read, kept for this tab.

  function signIn(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    running = false;
    loaded = false;
    if (stream) { stream.abort(); stream = null; }
    setConnection('down', 'Signed out');
    $('#signout').hidden = true;
    $('#signin-open').hidden = false;
    $('#signin-error').textContent = message || '';
    const d = $('#signin-dialog');
    if (!d.open) d.showModal();
    $('#signin-token').value = '';
    $('#signin-token').focus();
  }

  async function submitSignIn(ev) {
    ev.preventDefault();
    const value = $('#signin-token').value.trim();
    if (!value) { $('#signin-error').textContent = 'Paste your token.'; return; }
    $('#signin-submit').disabled = true;
    try {
      const res = await fetch('/api/v1/orders?limit=1', { headers: { Accept: 'application/json', Authorization: `Bearer ${value}` }, cache: 'no-store' });
      if (res.status === 401) { $('#signin-error').textContent = 'That token is not valid.'; return; }
      if (!res.ok && res.status !== 403) { $('#signin-error').textContent = `Could not check the token: HTTP ${res.status}`; return; }
      sessionStorage.setItem(TOKEN_KEY, value);
      $('#signin-token').value = '';
      $('#signin-dialog').close();
      begin();
    } catch (err) {
      $('#signin-error').textContent = `Could not check the token: ${err.message}`;
    } finally {
      $('#signin-submit').disabled = false;
    }
  }

  // begin loads the boards and opens the stream (once signed in, if needed).
  function begin() {
    running = true;
    $('#signin-open').hidden = true;
    $('#signout').hidden = !authRequired;
    showCustomer();
    render();
    connect();
    api('GET', '/api/v1/me').then((m) => { ROLES = m.roles || []; }).catch(() => { ROLES = []; }).finally(route);
  }

  // The order page: #/orders/<id> shows one order, its facts and its
  // history as a timeline, kept up to date from the stream; anything else
  // is the kitchen.

  function route() {
    const m = location.hash.match(/^#\/orders\/([A-Za-z0-9][A-Za-z0-9_-]*)$/);
    viewing = m ? m[1] : '';
    $('#order-view').hidden = !viewing;
    for (const e of document.querySelectorAll('.kitchen-view')) e.hidden = !!viewing;
    if (!viewing) return;
    $('#order-view-id').textContent = viewing;
    $('#order-view-status').replaceWith(el('span', { id: 'order-view-status', class: 'status' }));
    $('#cancel-reason').value = '';
    $('#order-view-message').textContent = '';
    $('#order-view-timeline').replaceChildren();
    $('#order-view-facts').replaceChildren();
    $('#order-view-cancel').hidden = true;
    loadOrder().then(() => $('#order-view-title').focus());
  }

  // loads counts the order page's reads: only the latest one is shown, as
  // two notifications per step start two reads that may answer out of order.
  let loads = 0;
  async function loadOrder() {
    const id = viewing;
    const n = ++loads;
    try {
      const o = await api('GET', `/api/v1/order/${encodeURIComponent(id)}`);
      if (id === viewing && n === loads) renderOrder(o);
    } catch (err) {
      if (id === viewing) say(`Could not load order ${id}: ${err.message}`, true, '#order-view-message');
    }
  }

  // took says how long a step took after the one before it.
  function took(ms) {
    if (!(ms >= 0)) return '';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
    return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
  }

  function renderOrder(o) {
    const status = $('#order-view-status');
    status.replaceWith(badge('span', o.status, o.status));
    const b = $('#order-view-title .status');
    b.id = 'order-view-status';
    const fact = (name, value) => [el('dt', { text: name }), el('dd', {}, value)];
    $('#order-view-facts').replaceChildren(
      ...fact('Customer', o.customerId),
      ...fact('Items', itemsText(o.items)),
      ...fact('Amount', money(o.amount)),
      ...(o.reason ? fact('Reason', o.reason) : []),
      ...fact('Placed', new Date(o.createdAt).toLocaleString()));
    let prev = 0;
    $('#order-view-timeline').replaceChildren(...(o.history || []).map((h) => {
      const at = Date.parse(h.at);
      const li = el('li', { 'data-status': h.status },
        badge('span', h.status, h.status),
        h.by ? el('span', { class: 'by', text: ` by ${h.by}` }) : null,
        h.reason ? el('span', { class: 'reason', text: ` (${h.reason})` }) : null,
        ' ', el('time', { dateTime: h.at, text: new Date(at).toLocaleTimeString() }),
        prev ? el('span', { class: 'took', text: ` · ${took(at - prev)} after the step before` }) : null);
      prev = at;
      return li;
    }));
    const may = ROLES.includes('admin') || ROLES.includes('shop');
    $('#order-view-cancel').hidden = !(may && CANCELLABLE.includes(o.status));
    $('#order-view-cancel').dataset.customer = o.customerId;
  }

  async function cancelOrder(ev) {
    ev.preventDefault();
    const button = $('#cancel-order');
    const id = viewing;
    button.disabled = true;
    try {
      const reason = $('#cancel-reason').value.trim();
      const o = await api('POST', '/api/v1/order/cancel', { orderId: id, by: $('#order-view-cancel').dataset.customer || staff(), ...(reason ? { reason } : {}) });
      if (id !== viewing) return;
      loads++; // a read started before the cancel must not draw over it
      renderOrder(o);
      say(`Order ${o.orderId} cancelled; its credit is given back.`, false, '#order-view-message');
      showCustomer();
    } catch (err) {
      say(`Could not cancel: ${err.message}`, true, '#order-view-message');
    } finally {
      button.disabled = false;
    }
  }

  // Rendering: small enough to redraw on every change.

  function render() {
    const byNewest = [...orders.values()].sort((a, b) => (Date.parse(b.createdAt) || 0) - (Date.parse(a.createdAt) || 0));
    for (const s of STATIONS) renderBoard(s, byNewest.filter((o) => o.status === s.queue).reverse());
    renderDashboard(byNewest);
  }

  function renderBoard(s, queue) {
    const board = $(`#board-${s.name}`);
    const list = $('.queue', board);
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    $('[data-count]', board).textContent = String(queue.length);
    $('[data-count]', board).setAttribute('aria-label', `${queue.length} waiting`);
    list.replaceChildren(...queue.map((o) => card(s, o)));
    if (queue.length === 0) list.append(el('li', { class: 'empty', text: manual ? 'Nothing waiting.' : 'Nothing waiting — orders pass through automatically.' }));
    if (focused) { const f = list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`); if (f) f.focus(); }
    const rec = $('.recent ul', board);
    const ids = recent.get(s.name);
    rec.replaceChildren(...(ids.length ? ids.map((id) => {
      const o = orders.get(id) || { orderId: id };
      return el('li', {}, orderLink(id), ` ${o.status || ''}`);
    }) : [el('li', { class: 'empty', text: 'None yet.' })]));
  }

  function card(s, o) {
    const isNew = fresh.has(`${o.orderId}@${s.name}`);
    const li = el('li', { class: `card${isNew ? ' new' : ''}`, 'data-order-id': o.orderId },
      el('div', { class: 'card-head' },
        orderLink(o.orderId, 'oid'),
        isNew ? el('span', { class: 'badge', text: 'new' }) : null),
      el('div', { class: 'card-body', text: `${o.customerId} · ${itemsText(o.items)}` }),
      el('div', { class: 'card-meta', text: `${money(o.amount)} · since ${time(o.updatedAt)}` }));
    if (manual) {
      li.append(el('div', { class: 'card-actions' },
        el('button', { type: 'button', class: 'step', 'data-action': s.path, 'data-focus-key': `${o.orderId}:step`, 'aria-label': `${s.action} ${o.orderId}`, text: s.action, onclick: (e) => report(s, o.orderId, e.currentTarget) }),
        el('button', { type: 'button', class: 'fail secondary', 'data-action': 'fail', 'data-focus-key': `${o.orderId}:fail`, 'aria-label': `Report a problem with ${o.orderId}`, text: 'Problem…', onclick: () => openFail(o.orderId, s) })));
    } else {
      li.append(el('div', { class: 'card-actions' },
        el('span', { class: 'working', text: `${s.name} at work…` }),
        el('button', { type: 'button', class: 'fail secondary', 'data-action': 'fail', 'data-focus-key': `${o.orderId}:fail`, 'aria-label': `Report a problem with ${o.orderId}`, text: 'Problem…', onclick: () => openFail(o.orderId, s) })));
    }
    return li;
  }

  function renderDashboard(list) {
    const counts = Object.fromEntries(STATUSES.map((st) => [st, 0]));
    for (const o of list) counts[o.status] = (counts[o.status] || 0) + 1;
    $('#summary').replaceChildren(...STATUSES.map((st) => badge('li', st, `${st} `, el('strong', { text: String(counts[st]) }))));
    $('#no-orders').hidden = list.length > 0;
    $('#orders tbody').replaceChildren(...list.slice(0, MAX_ROWS).map((o) => el('tr', { 'data-order-id': o.orderId },
      el('td', {}, orderLink(o.orderId)),
      el('td', { text: o.customerId }),
      el('td', { text: itemsText(o.items) }),
      el('td', { class: 'num', text: money(o.amount) }),
      el('td', {}, badge('span', o.status, o.status), o.reason ? el('small', { class: 'reason', text: ` ${o.reason}` }) : null),
      el('td', {}, el('time', { dateTime: o.updatedAt || '', text: time(o.updatedAt) })))));
  }

  // Actions. None of them reloads anything: the stream brings the change.

  async function report(s, orderId, button) {
    button.disabled = true;
    const board = $(`#board-${s.name}`);
    try {
      await api('POST', `/api/v1/order/${s.path}`, { orderId, by: staff() });
      say(`${s.action}: ${orderId} reported.`);
      // Keep the keyboard where the work is: the next order's button, or the board.
      setTimeout(() => {
        const next = $('.queue button.step', board);
        if (next) next.focus(); else $('h3', board).focus();
      }, 0);
    } catch (err) {
      button.disabled = false;
      say(`Could not ${s.action.toLowerCase()} ${orderId}: ${err.message}`, true);
    }
  }

  let failing = null;
  function openFail(orderId, s) {
    failing = { orderId, station: s, opener: document.activeElement };
    $('#fail-order').textContent = orderId;
    $('#fail-error').textContent = '';
    $('#fail-dialog').showModal();
    $('#fail-reason').select();
  }

  async function submitFail(ev) {
    ev.preventDefault();
    if (!failing) return;
    const reason = $('#fail-reason').value.trim();
    if (!reason) { $('#fail-error').textContent = 'Say what went wrong.'; return; }
    $('#fail-confirm').disabled = true;
    try {
      await api('POST', '/api/v1/order/reporterror', { orderId: failing.orderId, by: staff(), reason });
      say(`${failing.orderId} failed: ${reason}.`);
      $('#fail-dialog').close();
      const board = $(`#board-${failing.station.name}`);
      setTimeout(() => $('h3', board).focus(), 0);
      failing = null;
    } catch (err) {
      $('#fail-error').textContent = err.message;
    } finally {
      $('#fail-confirm').disabled = false;
    }
  }

  function say(text, bad, where) {
    const r = $(where || '#order-result');
    r.textContent = text;
    r.classList.toggle('error', !!bad);
  }

  function updatePrice() {
    const q = Number($('#quantity').value) || 0;
    $('#price').textContent = money(q * (PRICES[$('#size').value] || 0));
  }

  let customerTimer = 0;
  function showCustomer() {
    clearTimeout(customerTimer);
    customerTimer = setTimeout(async () => {
      const id = $('#customer').value.trim();
      const info = $('#customer-info');
      if (!id) { info.textContent = ''; return; }
      try {
        const c = await api('GET', `/api/v1/customers/${encodeURIComponent(id)}`);
        info.textContent = `${c.name}: ${money(c.availableCredit ?? c.available)} of ${money(c.creditLimit)} available`;
      } catch (err) {
        info.textContent = err.message;
      }
    }, 250);
  }

  async function placeOrder(ev) {
    ev.preventDefault();
    const customerId = $('#customer').value.trim();
    const quantity = Number($('#quantity').value);
    if (!customerId) { say('Enter a customer.', true); $('#customer').focus(); return; }
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 1000) { say('Quantity must be a whole number from 1 to 1000.', true); $('#quantity').focus(); return; }
    const button = $('#place-order');
    button.disabled = true;
    try {
      const a = await api('POST', '/api/v1/order', { customerId, items: [{ flavour: $('#flavour').value, size: $('#size').value, quantity }] });
      const r = $('#order-result');
      r.dataset.orderId = a.orderId;
      say(`Order ${a.orderId} placed${a.status ? ` (${a.status})` : ''}.`, a.status === 'cancelled');
      showCustomer();
    } catch (err) {
      say(`Order not placed: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    $('#order-form').addEventListener('submit', placeOrder);
    $('#size').addEventListener('change', updatePrice);
    $('#quantity').addEventListener('input', updatePrice);
    $('#customer').addEventListener('input', showCustomer);
    $('#fail-form').addEventListener('submit', submitFail);
    $('#fail-cancel').addEventListener('click', () => $('#fail-dialog').close());
    $('#fail-dialog').addEventListener('close', () => {
      if (failing && failing.opener && document.contains(failing.opener)) failing.opener.focus();
      failing = null;
    });
    $('#signin-form').addEventListener('submit', submitSignIn);
    $('#signin-open').addEventListener('click', () => signIn());
    $('#signout').addEventListener('click', () => signIn('Signed out.'));
    $('#more-orders').addEventListener('click', loadMore);
    $('#order-view-cancel').addEventListener('submit', cancelOrder);
    window.addEventListener('hashchange', () => { if (running) route(); });
    updatePrice();
    try {
      const cfg = await api('GET', '/api/v1/config');
      manual = cfg.kitchenMode === 'manual';
      authRequired = cfg.authRequired === true;
      $('#mode').textContent = `mode: ${cfg.kitchenMode}`;
      kitchen(cfg);
    } catch (err) {
      $('#mode').textContent = 'mode: unknown';
      say(`Could not load the kitchen: ${err.message}`, true);
    }
    document.body.dataset.mode = manual ? 'manual' : 'auto';
    $('#auto-note').hidden = manual;
    // In auto mode the boards are a live view of orders passing through.
    if (!manual) for (const d of document.querySelectorAll('.recent')) d.open = true;
    render();
    if (authRequired && !token()) signIn();
    else begin();
  }

  start();
})();
