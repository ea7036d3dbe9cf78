// mod_ecom's example shop page (shop.html): the browser side of the cookie
// session contract (docs/API.md, "Browser sessions").
//  - every call: fetch(url, {credentials: 'same-origin'}), so the session
//    cookie goes along and nothing is kept in JavaScript-reachable storage;
//  - every call that changes something (POST, PUT, PATCH, DELETE): the
//    X-CSRF-Token header, with the value of the ecom_csrf cookie, which
//    login set;
//  - data from the API is shown with textContent only, never as HTML.
'use strict';

(function () {
  // The API's path on this origin: ?api=/path, else /api. Only a plain
  // path is taken, so a link cannot point the page (and the password typed
  // into it) at another host.
  const wanted = new URLSearchParams(location.search).get('api');
  const API = wanted && /^\/(?!\/)[A-Za-z0-9._~\/-]*$/.test(wanted)
    ? wanted.replace(/\/+$/, '') : '/api';

  const $ = (id) => document.getElementById(id);

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)ecom_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : '';
  }

  // One API call: resolves to {status, body} (body: parsed JSON or null).
  async function call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET' && method !== 'HEAD') {
      headers['X-CSRF-Token'] = csrfToken();
    }
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(API + path, init);
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch (e) { data = null; }
    }
    return { status: res.status, body: data };
  }

  function say(text, isError) {
    const s = $('status');
    s.textContent = text;
    s.className = isError ? 'error' : '';
  }

  function problem(r) {
    return (r.body && (r.body.detail || r.body.title)) || ('HTTP ' + r.status);
  }

  function money(minor, currency) {
    const f = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = f.resolvedOptions().maximumFractionDigits;
    return f.format(minor / Math.pow(10, digits));
  }

  function show(loggedIn) {
    $('login').hidden = loggedIn;
    $('shop').hidden = !loggedIn;
    document.body.dataset.state = loggedIn ? 'shop' : 'login';
  }

  async function loadProducts() {
    const r = await call('GET', '/products/?limit=20&sort=newest');
    const list = $('products');
    list.replaceChildren();
    if (r.status !== 200) {
      say('Could not list the products: ' + problem(r), true);
      return;
    }
    for (const p of r.body.items) {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Add to cart';
      button.dataset.productId = String(p.id);
      button.addEventListener('click', () => addToCart(p.id));
      li.append(p.name + ' (' + money(p.price, p.currency) + ') ', button);
      list.append(li);
    }
  }

  // Resolves to true when the session is good (the cart could be read).
  async function loadCart() {
    const r = await call('GET', '/cart/');
    if (r.status === 401) {
      show(false);
      return false;
    }
    if (r.status !== 200) {
      say('Could not read the cart: ' + problem(r), true);
      return false;
    }
    const list = $('cart');
    list.replaceChildren();
    for (const line of r.body.items) {
      const li = document.createElement('li');
      li.dataset.productId = String(line.product_id);
      li.dataset.quantity = String(line.quantity);
      li.textContent = line.quantity + ' x ' + line.name + ': '
        + money(line.line_total, r.body.currency);
      list.append(li);
    }
    $('total').textContent = money(r.body.total, r.body.currency);
    document.body.dataset.cartLines = String(r.body.items.length);
    return true;
  }

  async function addToCart(productId) {
    const r = await call('POST', '/cart/', { product_id: productId, quantity: 1 });
    if (r.status !== 201) {
      say('Not added: ' + problem(r), true);
      return;
    }
    say('Added to the cart.');
    await loadCart();
  }

  async function enter(path, okStatus) {
    const r = await call('POST', path, {
      email: $('email').value, password: $('password').value,
    });
    $('password').value = '';
    if (r.status !== okStatus) {
      say(problem(r), true);
      return;
    }
    if (!r.body.csrf_token) {
      say('The server gave no browser session (is EcomSessions on?).', true);
      return;
    }
    $('who').textContent = r.body.user.email;
    say('Logged in.');
    show(true);
    await Promise.all([loadProducts(), loadCart()]);
  }

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    enter('/auth/login/', 200);
  });
  $('register-button').addEventListener('click', () => {
    if ($('login').reportValidity()) {
      enter('/auth/register/', 201);
    }
  });
  $('logout-button').addEventListener('click', async () => {
    const r = await call('POST', '/auth/logout/');
    if (r.status !== 204 && r.status !== 200) {
      say('Logout failed: ' + problem(r), true);
      return;
    }
    say('Logged out.');
    show(false);
  });

  // On load: a live session shows the shop, anything else the login form.
  (async () => {
    if (await loadCart()) {
      $('who').textContent = 'you';
      show(true);
      await loadProducts();
    }
  })();
})();
